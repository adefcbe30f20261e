import type { FastifyReply, FastifyRequest } from 'fastify';
import { calculateJwkThumbprint, createLocalJWKSet, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { CONSOLE_CLIENT_ID, type ClientService } from '../../clients/service.ts';
import { API_SIGNING_ALGS, ASYMMETRIC_ALGS } from '../../lib/constants.ts';
import { sha256 } from '../../lib/crypto.ts';
import { ADMIN_API } from '../../lib/scopes.ts';

type AdminScope = 'admin' | 'admin:read';

interface AdminCaller {
  clientId: string;
  /** Who the audit trail names: `client:<id>` (client_credentials) or `user:<id>` (a person signed in through the client). */
  actor: string;
  scopes: Set<string>;
}

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminCaller;
  }
  interface FastifyContextConfig {
    /** The scope a route needs: `admin:read` to read, `admin` to change anything. */
    scope?: AdminScope;
  }
}

const PUBLIC_PARTS = ['kty', 'kid', 'alg', 'use', 'crv', 'x', 'y', 'n', 'e'] as const;

/** How far a proof's `iat` may be from now, in seconds; a proof's `jti` is remembered twice as long. */
const DPOP_WINDOW = 60;

export interface AdminAuthDeps {
  issuer: string;
  jwks: () => JWK[];
  clients: Pick<ClientService, 'adminStatus'>;
  /** The admin API scopes a person's roles grant now; null for a person who is disabled or gone. */
  personScopes: (userId: string) => Promise<Set<string> | null>;
  /** Counts uses of a key within a window (shared by every instance): DPoP proof replay detection. */
  seen: (key: string, windowSeconds: number) => Promise<number>;
}

/**
 * Admin API tokens are our own JWT access tokens, validated exactly as any resource server
 * validates them: our JWKS, our issuer, the admin API as audience, `typ: at+jwt`. A token bound
 * to a key (DPoP, `cnf.jkt`) is accepted only with the `DPoP` scheme and a fresh proof made with
 * that key for this request (RFC 9449 §7). On top, the token is either an enabled admin client's
 * own (client_credentials), or a person's who signed in through the admin console
 * (CONSOLE_CLIENT_ID), whose roles (idp-admin, idp-viewer) must still grant the scope: a role
 * taken away, or the account disabled, ends their access at once, not when the token expires.
 */
export function createAdminAuth(opts: AdminAuthDeps) {
  // Rebuilt when the keys change (rotation swaps the array).
  let source: JWK[] | undefined;
  let keySet: ReturnType<typeof createLocalJWKSet>;
  const currentKeySet = () => {
    const jwks = opts.jwks();
    if (jwks !== source) {
      source = jwks;
      keySet = createLocalJWKSet({ keys: jwks.map((k) => Object.fromEntries(PUBLIC_PARTS.filter((p) => k[p] !== undefined).map((p) => [p, k[p]])) as JWK) });
    }
    return keySet;
  };
  const realm = `${opts.issuer}/admin`;

  const deny = (reply: FastifyReply, status: 401 | 403, error: string | undefined, description: string, scope?: string, scheme: 'Bearer' | 'DPoP' = 'Bearer') => {
    const params = [`realm="${realm}"`];
    if (error) params.push(`error="${error}"`, `error_description="${description}"`);
    if (scope) params.push(`scope="${scope}"`);
    if (scheme === 'DPoP') params.push(`algs="${ASYMMETRIC_ALGS.join(' ')}"`);
    return reply
      .code(status)
      .header('www-authenticate', `${scheme} ${params.join(', ')}`)
      .header('cache-control', 'no-store')
      .send({ error: error ?? 'unauthorized', error_description: description });
  };

  /** What is wrong with the request's DPoP proof for `token` bound to `jkt`, or null when it is good. */
  async function proofProblem(req: FastifyRequest, token: string, jkt: string): Promise<string | null> {
    const proof = req.headers.dpop;
    if (typeof proof !== 'string') return 'this token is bound to a key: send it with a DPoP proof (RFC 9449)';
    let verified: Awaited<ReturnType<typeof jwtVerify>>;
    try {
      verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...ASYMMETRIC_ALGS] });
    } catch {
      return 'the DPoP proof is malformed or its signature is invalid';
    }
    const { payload, protectedHeader } = verified;
    if ((await calculateJwkThumbprint(protectedHeader.jwk!)) !== jkt) return 'the DPoP proof is not made with the key the token is bound to';
    const htu = typeof payload.htu === 'string' && URL.canParse(payload.htu) ? new URL(payload.htu) : null;
    if (htu) htu.search = htu.hash = '';
    if (payload.htm !== req.method || htu?.href !== `${opts.issuer}${req.url.split('?')[0]}`) return 'the DPoP proof is for another request (htm, htu)';
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > DPOP_WINDOW) return 'the DPoP proof is not fresh (iat)';
    if (payload.ath !== sha256(token)) return 'the DPoP proof is for another access token (ath)';
    if (typeof payload.jti !== 'string' || payload.jti.length > 200) return 'the DPoP proof has no valid jti';
    if ((await opts.seen(`dpop:${sha256(`${jkt}:${payload.jti}`)}`, 2 * DPOP_WINDOW)) > 1) return 'the DPoP proof was already used';
    return null;
  }

  return async function authenticate(req: FastifyRequest, reply: FastifyReply) {
    const header = req.headers.authorization;
    if (!header) return deny(reply, 401, undefined, 'a bearer access token for the admin API is required');
    const match = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header);
    if (!match) return deny(reply, 401, 'invalid_request', 'the Authorization header must be "Bearer <token>" (or "DPoP <token>" for a DPoP-bound token)');
    const scheme = match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const token = match[2]!;

    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, currentKeySet(), {
        issuer: opts.issuer,
        audience: ADMIN_API,
        typ: 'at+jwt',
        algorithms: [...API_SIGNING_ALGS],
      }));
    } catch {
      return deny(reply, 401, 'invalid_token', 'the access token is invalid or expired');
    }
    const jkt = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (typeof jkt === 'string') {
      if (scheme !== 'DPoP') return deny(reply, 401, 'invalid_token', 'this token is bound to a key: use the DPoP authorization scheme with a proof', undefined, 'DPoP');
      const problem = await proofProblem(req, token, jkt);
      if (problem) return deny(reply, 401, 'invalid_dpop_proof', problem, undefined, 'DPoP');
    } else if (scheme === 'DPoP') {
      return deny(reply, 401, 'invalid_token', 'this token is not bound to a key: use the Bearer scheme');
    }
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : '';
    const subject = typeof payload.sub === 'string' ? payload.sub : '';
    if (!clientId || !subject) return deny(reply, 401, 'invalid_token', 'the access token names no client or subject');
    const client = await opts.clients.adminStatus(clientId);
    if (!client?.enabled) return deny(reply, 401, 'invalid_token', 'the client of this token is disabled or deleted');
    const own = subject === clientId;
    if (own && !client.admin) return deny(reply, 401, 'invalid_token', 'only tokens of admin clients are accepted');
    if (!own && clientId !== CONSOLE_CLIENT_ID) return deny(reply, 401, 'invalid_token', `a person's token is accepted only from the admin console (${CONSOLE_CLIENT_ID})`);

    let scopes = new Set(String(payload.scope ?? '').split(' ').filter(Boolean));
    let actor = `client:${clientId}`;
    if (!own) {
      const granted = await opts.personScopes(subject);
      if (!granted) return deny(reply, 401, 'invalid_token', 'the user of this token is disabled or deleted');
      scopes = new Set([...scopes].filter((s) => granted.has(s)));
      actor = `user:${subject}`;
    }
    const needed = req.routeOptions.config.scope ?? 'admin';
    // `admin` includes `admin:read`.
    if (!scopes.has('admin') && !(needed === 'admin:read' && scopes.has('admin:read'))) {
      return deny(reply, 403, 'insufficient_scope', `this operation needs the ${needed} scope`, needed);
    }
    req.admin = { clientId, actor, scopes };
  };
}

export const adminActor = (req: FastifyRequest) => ({ actor: req.admin?.actor ?? 'client:unknown', ip: req.ip });
