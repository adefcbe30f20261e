import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt';
import express from 'express';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';
import Fastify, { type FastifyRequest } from 'fastify';
import buildGetJwks from 'get-jwks';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, EmbeddedJWK, exportJWK, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { seed } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { API, listen, signInThroughPages, snippetLinesMissingFrom, type Loopback } from './support.ts';

// The snippets of docs/resource-servers.md, validating real tokens from a real server.

const DOC = 'docs/resource-servers.md';
const THIS_FILE = fileURLToPath(import.meta.url);

let server: TestServer;
let seeded: Awaited<ReturnType<typeof seed>>;
let config: oidc.Configuration;
/** A JWT access token for the API with scope `read`, and the ID token of the same sign-in. */
let accessToken: string;
let idToken: string;
/** A token for the API with scope `write` only. */
let writeToken: string;
/** The access token with a claim changed after signing. */
let tampered: string;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startServer();
  seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
  config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
  const ua = new UserAgent();
  const { tokens } = await loginAndExchange(ua, config, { login: seeded, scope: 'openid read', resource: API });
  accessToken = tokens.access_token;
  idToken = tokens.id_token!;
  ({ access_token: writeToken } = (await loginAndExchange(ua, config, { scope: 'openid write', resource: API })).tokens);
  const [header, payload, signature] = accessToken.split('.');
  const claims = { ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), scope: 'read write' };
  tampered = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await server?.close();
});

/** A DPoP-bound access token for the API, obtained as the guide shows, with the handle that holds its key. */
async function dpopBoundToken() {
  const ISSUER = server.issuer;
  const config = await oidc.discovery(new URL(ISSUER), seeded.clientId, seeded.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid read',
    resource: API,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
  });
  const currentUrl = new URL((await signInThroughPages(new UserAgent(), url, seeded, REDIRECT_URI)).url);
  const keyPair = await oidc.randomDPoPKeyPair('ES256');
  const DPoP = oidc.getDPoPHandle(config, keyPair);
  const tokens = await oidc.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: codeVerifier, expectedState: state }, undefined, { DPoP });
  return { config, DPoP, tokens, keyPair };
}

/** The status an openid-client call to a resource server ended with (it throws on a WWW-Authenticate challenge). */
async function statusOf(request: Promise<Response>): Promise<number> {
  return request.then(
    (res) => res.status,
    (err: { status?: number; response?: Response }) => err.status ?? err.response?.status ?? Number.NaN,
  );
}

describe('jose (docs/resource-servers.md)', () => {
  let verifyToken: (authorization: string | undefined) => Promise<{ sub?: string; scope?: unknown; client_id?: unknown }>;

  beforeAll(async () => {
    const ISSUER = server.issuer;

    const discovery = await fetch(`${ISSUER}/.well-known/openid-configuration`);
    const { jwks_uri } = (await discovery.json()) as { jwks_uri: string };
    const jwks = createRemoteJWKSet(new URL(jwks_uri)); // keeps the keys 10 minutes (cacheMaxAge), refetches on an unknown kid

    async function verifyAccessToken(authorization: string | undefined) {
      const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
      if (!token) throw new Error('no Bearer token');
      const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
      if (payload.cnf) throw new Error('a DPoP-bound token needs the DPoP scheme and a proof');
      return payload; // sub, client_id, scope: authorize with them
    }
    verifyToken = verifyAccessToken;
    expect(jwks_uri).toBe(`${ISSUER}/jwks`);
  });

  it('runs the code the guide shows', () => {
    expect(snippetLinesMissingFrom(DOC, '## Node.js: jose', [THIS_FILE])).toEqual([]);
  });

  it('accepts our access token for the API', async () => {
    await expect(verifyToken(`Bearer ${accessToken}`)).resolves.toMatchObject({ sub: seeded.userId, client_id: seeded.clientId, scope: 'read' });
  });

  it('refuses a tampered token, a missing one, and an ID token (its typ, even with an audience that matches)', async () => {
    await expect(verifyToken(`Bearer ${tampered}`)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    await expect(verifyToken(undefined)).rejects.toThrow('no Bearer token');
    await expect(verifyToken(`Bearer ${idToken}`)).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    await expect(jwtVerify(idToken, jwks, { issuer: server.issuer, audience: seeded.clientId })).resolves.toBeDefined();
    await expect(jwtVerify(idToken, jwks, { issuer: server.issuer, audience: seeded.clientId, typ: 'at+jwt' })).rejects.toMatchObject({ claim: 'typ' });
  });

  it('refuses a DPoP-bound token presented as a Bearer token', async () => {
    const { tokens } = await dpopBoundToken();
    await expect(verifyToken(`Bearer ${tokens.access_token}`)).rejects.toThrow('DPoP-bound');
  });
});

describe('express-oauth2-jwt-bearer (docs/resource-servers.md)', () => {
  /** Serves an Express app on 127.0.0.1 and returns its origin. */
  async function serve(app: express.Express): Promise<string> {
    const listener = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => listener.once('listening', resolve));
    closers.push(
      () =>
        new Promise((resolve) => {
          listener.closeAllConnections();
          listener.close(resolve);
        }),
    );
    return `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
  }

  let origin: string;
  /** The Authorization and DPoP headers of every request the app received. */
  const received: { authorization?: string; dpop?: string }[] = [];
  beforeAll(async () => {
    const ISSUER = server.issuer;

    const app = express();
    app.use((req, _res, next) => {
      received.push({ authorization: req.headers.authorization, dpop: req.get('dpop') });
      next();
    });
    app.use(auth({ issuerBaseURL: ISSUER, audience: API, tokenSigningAlg: 'RS256', strict: true }));
    app.get('/orders', requiredScopes('read'), (req, res) => {
      res.json({ sub: req.auth?.payload.sub });
    });
    origin = await serve(app);
  });
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${origin}${path}`, { headers });

  it('runs the code the guide shows', () => {
    expect(snippetLinesMissingFrom(DOC, '## Express: express-oauth2-jwt-bearer', [THIS_FILE])).toEqual([]);
  });

  it('accepts our access token, from a plain-http issuer found by discovery', async () => {
    const res = await get('/orders', { authorization: `Bearer ${accessToken}` });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sub: seeded.userId });
  });

  it('refuses no token and a tampered one (401), and a token without the scope (403)', async () => {
    const none = await get('/orders');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await get('/orders', { authorization: `Bearer ${tampered}` })).status).toBe(401);
    const narrow = await get('/orders', { authorization: `Bearer ${writeToken}` });
    expect(narrow.status).toBe(403);
    expect(narrow.headers.get('www-authenticate')).toContain('insufficient_scope');
  });

  it('strict: true is what refuses an ID token whose audience matches: its typ is not at+jwt', async () => {
    const asClient = async (strict: boolean) => {
      const app = express();
      app.use(auth({ issuerBaseURL: server.issuer, audience: seeded.clientId, tokenSigningAlg: 'RS256', strict }));
      app.get('/whoami', (req, res) => {
        res.json({ sub: req.auth?.payload.sub });
      });
      return serve(app);
    };
    const strict = await asClient(true);
    expect((await fetch(`${strict}/whoami`, { headers: { authorization: `Bearer ${idToken}` } })).status).toBe(401);
    const lax = await asClient(false);
    expect((await fetch(`${lax}/whoami`, { headers: { authorization: `Bearer ${idToken}` } })).status).toBe(200);
  });

  it('checks DPoP itself: a bound token passes with its proof (openid-client), not as a Bearer token nor with another key', async () => {
    const { config: client, DPoP, tokens } = await dpopBoundToken();
    expect(await statusOf(oidc.fetchProtectedResource(client, tokens.access_token, new URL(`${origin}/orders`), 'GET', undefined, undefined, { DPoP }))).toBe(200);
    const used = received.at(-1)!;
    expect(used.authorization).toBe(`DPoP ${tokens.access_token}`);
    expect((await get('/orders', { authorization: `Bearer ${tokens.access_token}` })).status).toBe(401);
    const thief = oidc.getDPoPHandle(client, await oidc.randomDPoPKeyPair('ES256'));
    expect(await statusOf(oidc.fetchProtectedResource(client, tokens.access_token, new URL(`${origin}/orders`), 'GET', undefined, undefined, { DPoP: thief }))).toBe(401);
    const elsewhere = await get('/elsewhere', { authorization: used.authorization!, dpop: used.dpop! });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.headers.get('www-authenticate')).toContain('invalid_dpop_proof');
    // As the guide says: it keeps no record of used proofs, so the same proof passes again.
    expect((await get('/orders', { authorization: used.authorization!, dpop: used.dpop! })).status).toBe(200);
  });
});

describe('@fastify/jwt with get-jwks (docs/resource-servers.md)', () => {
  async function start(API: string, typ: boolean): Promise<string> {
    const ISSUER = server.issuer;
    const getJwks = buildGetJwks({ providerDiscovery: true, issuersWhitelist: [ISSUER] });
    const app = Fastify();
    await app.register(fastifyJwt, {
      decode: { complete: true },
      secret: (_request: FastifyRequest, token: TokenOrHeader) => {
        const { kid, alg } = 'header' in token ? token.header : token;
        return getJwks.getPublicKey({ domain: ISSUER, kid, alg });
      },
      verify: typ ? { allowedIss: ISSUER, allowedAud: API, algorithms: ['RS256'], checkTyp: 'at+jwt' } : { allowedIss: ISSUER, allowedAud: API, algorithms: ['RS256'] },
    });
    app.addHook('onRequest', async (request, reply) => {
      try {
        await request.jwtVerify();
      } catch {
        return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send();
      }
    });
    app.get('/orders', (request) => ({ claims: request.user }));
    closers.push(() => app.close());
    return app.listen({ port: 0, host: '127.0.0.1' });
  }

  let origin: string;
  beforeAll(async () => {
    origin = await start(API, true);
  });

  it('runs the code the guide shows (checkTyp made switchable for the test below)', () => {
    expect(snippetLinesMissingFrom(DOC, '## Fastify: @fastify/jwt with get-jwks', [THIS_FILE])).toEqual([
      "verify: { allowedIss: ISSUER, allowedAud: API, algorithms: ['RS256'], checkTyp: 'at+jwt' },",
    ]);
  });

  it('finds the keys through discovery and accepts our access token', async () => {
    const res = await fetch(`${origin}/orders`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { claims: unknown }).claims).toMatchObject({ sub: seeded.userId, aud: API, scope: 'read' });
  });

  it('refuses a tampered token and no token', async () => {
    expect((await fetch(`${origin}/orders`, { headers: { authorization: `Bearer ${tampered}` } })).status).toBe(401);
    expect((await fetch(`${origin}/orders`)).status).toBe(401);
  });

  it('checkTyp is what refuses an ID token whose audience matches', async () => {
    const strict = await start(seeded.clientId, true);
    expect((await fetch(`${strict}/orders`, { headers: { authorization: `Bearer ${idToken}` } })).status).toBe(401);
    const lax = await start(seeded.clientId, false);
    expect((await fetch(`${lax}/orders`, { headers: { authorization: `Bearer ${idToken}` } })).status).toBe(200);
  });

  it('get-jwks without providerDiscovery looks at /.well-known/jwks.json, which we do not serve', async () => {
    const { kid, alg } = JSON.parse(Buffer.from(accessToken.split('.')[0]!, 'base64url').toString()) as { kid: string; alg: string };
    await expect(buildGetJwks({ issuersWhitelist: [server.issuer] }).getPublicKey({ domain: server.issuer, kid, alg })).rejects.toThrow();
    await expect(buildGetJwks({ providerDiscovery: true }).getPublicKey({ domain: server.issuer, kid, alg })).resolves.toContain('BEGIN PUBLIC KEY');
  });
});

describe('DPoP: a bound token checked with jose (docs/resource-servers.md)', () => {
  let api: Loopback;
  /** The headers of every request the API received. */
  const received: Record<string, string | undefined>[] = [];

  beforeAll(async () => {
    const ISSUER = server.issuer;
    const jwks = createRemoteJWKSet(new URL(`${ISSUER}/jwks`));

    const usedProofs = new Map<string, number>(); // jti → when it may be forgotten; shared (Redis…) with several instances

    async function verifyDPoPRequest(method: string, url: string, headers: { authorization?: string; dpop?: string }) {
      const token = /^DPoP (.+)$/i.exec(headers.authorization ?? '')?.[1];
      if (!token || !headers.dpop) throw new Error('DPoP token and proof required');
      const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
      const proof = await jwtVerify(headers.dpop, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'Ed25519', 'EdDSA'], maxTokenAge: 60, clockTolerance: 5 });
      const requested = new URL(url);
      if (proof.payload.htm !== method || proof.payload.htu !== requested.origin + requested.pathname) throw new Error('the proof is for another request');
      if (proof.payload.ath !== createHash('sha256').update(token).digest('base64url')) throw new Error('the proof is for another token');
      const { jkt } = (payload.cnf ?? {}) as { jkt?: string };
      if (jkt !== (await calculateJwkThumbprint(proof.protectedHeader.jwk!))) throw new Error('the proof is signed with another key');
      const jti = String(proof.payload.jti ?? '');
      for (const [used, until] of usedProofs) if (until < Date.now()) usedProofs.delete(used);
      if (!jti || usedProofs.has(jti)) throw new Error('the proof was used before');
      usedProofs.set(jti, Date.now() + 70_000); // maxTokenAge + clockTolerance, then forget it
      return payload;
    }

    api = await listen((req, res) => {
      const headers = { authorization: req.headers.authorization, dpop: typeof req.headers.dpop === 'string' ? req.headers.dpop : undefined };
      received.push(headers);
      verifyDPoPRequest(req.method ?? '', `${api.origin}${req.url}`, headers).then(
        (payload) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: payload.sub })),
        (err: Error) => res.writeHead(401, { 'www-authenticate': 'DPoP error="invalid_dpop_proof"', 'content-type': 'text/plain' }).end(err.message),
      );
    });
    closers.push(() => api.close());
  });

  it('runs the code the guide shows', () => {
    expect(snippetLinesMissingFrom(DOC, '## DPoP (sender-constrained tokens)', [THIS_FILE])).toEqual([]);
  });

  it('issues a token bound to the client key (cnf.jkt, token_type DPoP), and the API accepts it with a fresh proof', async () => {
    const { config, DPoP, tokens, keyPair } = await dpopBoundToken();
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)) });

    const API_URL = api.origin;
    const orders = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${API_URL}/orders`), 'GET', undefined, undefined, { DPoP });
    expect(orders.status).toBe(200);
    expect(await orders.json()).toEqual({ sub: seeded.userId });
    expect(received.at(-1)!.authorization).toBe(`DPoP ${tokens.access_token}`);

    // A second call makes a new proof, which passes too.
    expect(await statusOf(oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${API_URL}/orders`), 'GET', undefined, undefined, { DPoP }))).toBe(200);
  });

  it('refuses the bound token as Bearer, a replayed proof, a proof for another URL or method, and a proof of another key', async () => {
    const { config: client, DPoP, tokens } = await dpopBoundToken();
    const url = `${api.origin}/orders`;
    expect(await statusOf(oidc.fetchProtectedResource(client, tokens.access_token, new URL(url), 'GET', undefined, undefined, { DPoP }))).toBe(200);
    const used = received.at(-1)!;

    expect((await fetch(url, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
    const replay = (target: string, method = 'GET') => fetch(target, { method, headers: { authorization: used.authorization!, dpop: used.dpop! } });
    const replayed = await replay(url);
    expect(replayed.status).toBe(401);
    expect(await replayed.text()).toBe('the proof was used before');
    expect(await (await replay(`${api.origin}/elsewhere`)).text()).toBe('the proof is for another request');
    expect(await (await replay(url, 'DELETE')).text()).toBe('the proof is for another request');

    // A thief with the token but another key: its proof is valid, for the wrong key.
    const thief = oidc.getDPoPHandle(client, await oidc.randomDPoPKeyPair('ES256'));
    expect(await statusOf(oidc.fetchProtectedResource(client, tokens.access_token, new URL(url), 'GET', undefined, undefined, { DPoP: thief }))).toBe(401);
  });
});
