import * as oidc from 'openid-client';
import { createdClient, idp } from './cli.ts';
import { discover } from './flow.ts';
import type { TestServer } from './server.ts';

export interface AdminApi {
  clientId: string;
  clientSecret: string;
  /** A client_credentials token from our own token endpoint, with no `resource`. */
  token(scope?: 'admin' | 'admin:read'): Promise<string>;
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; headers: Headers; body: T }>;
}

/** Bootstraps an admin client through the CLI, as the README tells an operator to. */
export async function adminApi(server: TestServer): Promise<AdminApi> {
  const created = await idp(['clients', 'create', '--name', 'ops', '--admin', '--json'], server.env);
  if (created.code !== 0) throw new Error(created.stderr);
  const { clientId, clientSecret } = createdClient(created);
  const config = await discover(server.issuer, clientId, clientSecret);
  const tokens = new Map<string, string>();
  const token = async (scope: 'admin' | 'admin:read' = 'admin') => {
    if (!tokens.has(scope)) tokens.set(scope, (await oidc.clientCredentialsGrant(config, { scope })).access_token);
    return tokens.get(scope)!;
  };
  return {
    clientId,
    clientSecret,
    token,
    async call(method, path, body, explicitToken) {
      const headers: Record<string, string> = {};
      const bearer = explicitToken === undefined ? await token() : explicitToken;
      if (bearer) headers.authorization = `Bearer ${bearer}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(new URL(path, server.issuer), { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as never };
    },
  };
}
