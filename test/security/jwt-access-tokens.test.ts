// Resource servers validating our JWT access tokens with the documented recipe (README: "Tokens
// and how to validate them"): every forgery below must fail. RFC 8725, RFC 9068 §4, RFC 9700 §2.2.
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, base64url, type JWTVerifyOptions } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createdClient, idp } from '../helpers/cli.ts';
import { loginAndExchange } from '../helpers/flow.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { basic, post, securityContext } from './setup.ts';

const API = 'https://api.example.com';
const ctx = securityContext();
let accessToken: string;
let idToken: string;
let recipe: () => JWTVerifyOptions;
const verify = (jwt: string) => jwtVerify(jwt, createRemoteJWKSet(new URL(`${ctx.server.issuer}/jwks`)), recipe());

const part = (jwt: string, i: 0 | 1) => JSON.parse(Buffer.from(jwt.split('.')[i]!, 'base64url').toString()) as Record<string, unknown>;
const encode = (o: unknown) => base64url.encode(JSON.stringify(o));

beforeAll(async () => {
  recipe = () => ({ issuer: ctx.server.issuer, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
  const m2m = createdClient(await idp(['clients', 'create', '--name', 'rs-test', '--grant-type', 'client_credentials', '--scope', '', '--api', `${API} read`, '--json'], ctx.server.env));
  const t = await post(ctx, '/token', { grant_type: 'client_credentials', resource: API, scope: 'read' }, { authorization: basic(m2m.clientId, m2m.clientSecret) });
  accessToken = t.body.access_token!;
  idToken = (await loginAndExchange(new UserAgent(), ctx.config, { login: ctx.app })).tokens.id_token!;
});

describe('JWT access tokens at a resource server', () => {
  it('SEC-JWT-01 accepts the genuine token (control)', async () => {
    await expect(verify(accessToken)).resolves.toBeDefined();
  });

  it('SEC-JWT-02 rejects alg "none"', async () => {
    const forged = `${encode({ ...part(accessToken, 0), alg: 'none' })}.${accessToken.split('.')[1]}.`;
    await expect(verify(forged)).rejects.toThrow();
  });

  it('SEC-JWT-03 rejects HS256 keyed with our public key', async () => {
    const { createHmac } = await import('node:crypto');
    const jwks = (await (await fetch(`${ctx.server.issuer}/jwks`)).json()) as { keys: Record<string, string>[] };
    const pub = JSON.stringify(jwks.keys[0]);
    const head = encode({ ...part(accessToken, 0), alg: 'HS256' });
    const body = accessToken.split('.')[1];
    const sig = createHmac('sha256', pub).update(`${head}.${body}`).digest('base64url');
    await expect(verify(`${head}.${body}.${sig}`)).rejects.toThrow();
  });

  it('SEC-JWT-04 rejects an unknown kid', async () => {
    const forged = `${encode({ ...part(accessToken, 0), kid: 'not-ours' })}.${accessToken.split('.').slice(1).join('.')}`;
    await expect(verify(forged)).rejects.toThrow();
  });

  it.each([['jku'], ['x5u'], ['jwk']])('SEC-JWT-05 rejects a token signed by the attacker and pointing at its key with %s', async (header) => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const attackerJwk = await exportJWK(publicKey);
    const extra = header === 'jwk' ? { jwk: attackerJwk } : { [header]: 'https://evil.example/keys' };
    const forged = await new SignJWT(part(accessToken, 1)).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'evil', ...extra }).sign(privateKey);
    await expect(verify(forged)).rejects.toThrow();
  });

  it('SEC-JWT-06 rejects a wrong issuer', async () => {
    recipe = () => ({ issuer: 'https://evil.example', audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
    await expect(verify(accessToken)).rejects.toThrow();
    recipe = () => ({ issuer: ctx.server.issuer, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
  });

  it('SEC-JWT-07 rejects a token for another audience', async () => {
    await expect(jwtVerify(accessToken, createRemoteJWKSet(new URL(`${ctx.server.issuer}/jwks`)), { ...recipe(), audience: 'https://other-api.example.com' })).rejects.toThrow();
  });

  it('SEC-JWT-08 rejects an ID token replayed as an access token (typ)', async () => {
    await expect(jwtVerify(idToken, createRemoteJWKSet(new URL(`${ctx.server.issuer}/jwks`)), { ...recipe(), audience: ctx.app.clientId })).rejects.toThrow(/typ/);
  });

  it('SEC-JWT-09 rejects an expired token', async () => {
    await expect(verify(accessToken).then(() => jwtVerify(accessToken, createRemoteJWKSet(new URL(`${ctx.server.issuer}/jwks`)), { ...recipe(), currentDate: new Date(Date.now() + 3600_000) }))).rejects.toThrow(/exp/);
  });

  it('SEC-JWT-10 rejects a token used before its time (nbf / iat in the future)', async () => {
    const claims = part(accessToken, 1) as { iat: number };
    await expect(jwtVerify(accessToken, createRemoteJWKSet(new URL(`${ctx.server.issuer}/jwks`)), { ...recipe(), currentDate: new Date((claims.iat - 3600) * 1000), maxTokenAge: '1h' })).rejects.toThrow();
  });

  it('SEC-JWT-11 rejects a tampered payload', async () => {
    const [h, , s] = accessToken.split('.');
    await expect(verify(`${h}.${encode({ ...part(accessToken, 1), scope: 'read admin' })}.${s}`)).rejects.toThrow();
  });
});
