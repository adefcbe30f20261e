import type { FastifyReply, FastifyRequest } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import type { PrismaClient } from '../../db/index.ts';
import { ADMIN_API } from '../../oidc/scopes.ts';

export type AdminScope = 'admin' | 'admin:read';

export interface AdminCaller {
  clientId: string;
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

/**
 * Admin API tokens are our own JWT access tokens, validated exactly as any resource server
 * validates them: our JWKS, our issuer, the admin API as audience, `typ: at+jwt`. On top, the
 * token must be a client's own (client_credentials), and that client must still be an enabled
 * admin client.
 */
export function createAdminAuth(opts: { issuer: string; jwks: () => JWK[]; prisma: PrismaClient }) {
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

  const deny = (reply: FastifyReply, status: 401 | 403, error: string | undefined, description: string, scope?: string) => {
    const params = [`realm="${realm}"`];
    if (error) params.push(`error="${error}"`, `error_description="${description}"`);
    if (scope) params.push(`scope="${scope}"`);
    return reply
      .code(status)
      .header('www-authenticate', `Bearer ${params.join(', ')}`)
      .header('cache-control', 'no-store')
      .send({ error: error ?? 'unauthorized', error_description: description });
  };

  return async function authenticate(req: FastifyRequest, reply: FastifyReply) {
    const header = req.headers.authorization;
    if (!header) return deny(reply, 401, undefined, 'a bearer access token for the admin API is required');
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header);
    if (!match) return deny(reply, 401, 'invalid_request', 'the Authorization header must be "Bearer <token>"');

    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(match[1]!, currentKeySet(), {
        issuer: opts.issuer,
        audience: ADMIN_API,
        typ: 'at+jwt',
        algorithms: ['RS256', 'ES256', 'EdDSA'],
      }));
    } catch {
      return deny(reply, 401, 'invalid_token', 'the access token is invalid or expired');
    }
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : '';
    if (!clientId || payload.sub !== clientId) return deny(reply, 401, 'invalid_token', 'only client_credentials tokens of an admin client are accepted');
    const client = await opts.prisma.client.findUnique({ where: { id: clientId }, select: { disabled: true, admin: true } });
    if (!client || client.disabled) return deny(reply, 401, 'invalid_token', 'the client of this token is disabled or deleted');
    if (!client.admin) return deny(reply, 401, 'invalid_token', 'only tokens of admin clients are accepted');

    const scopes = new Set(String(payload.scope ?? '').split(' ').filter(Boolean));
    const needed = req.routeOptions.config.scope ?? 'admin';
    // `admin` includes `admin:read`.
    if (!scopes.has('admin') && !(needed === 'admin:read' && scopes.has('admin:read'))) {
      return deny(reply, 403, 'insufficient_scope', `this operation needs the ${needed} scope`, needed);
    }
    req.admin = { clientId, scopes };
  };
}

export const adminActor = (req: FastifyRequest) => ({ actor: `client:${req.admin?.clientId ?? 'unknown'}`, ip: req.ip });
