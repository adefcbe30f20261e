import * as oidc from 'openid-client';
import { afterAll, beforeAll } from 'vitest';
import { seed } from '../helpers/seed.ts';
import { discover, REDIRECT_URI } from '../helpers/flow.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import type { UserAgent } from '../helpers/user-agent.ts';
import { stored } from '../helpers/stored.ts';

export interface SecurityContext {
  server: TestServer;
  app: Awaited<ReturnType<typeof seed>>;
  config: oidc.Configuration;
}

/** One server, one user and one confidential client for a security test file. */
export function securityContext(): SecurityContext {
  const ctx = {} as SecurityContext;
  beforeAll(async () => {
    ctx.server = await startServer();
    ctx.app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    ctx.config = await discover(ctx.server.issuer, ctx.app.clientId, ctx.app.clientSecret);
  });
  afterAll(() => ctx.server?.close());
  return ctx;
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A form POST to one of the server's endpoints; the JSON answer (or text) and headers. */
export async function post(ctx: SecurityContext, path: string, body: Record<string, string> | string, headers: Record<string, string> = {}) {
  const res = await fetch(`${ctx.server.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: typeof body === 'string' ? body : new URLSearchParams(body),
  });
  const text = await res.text();
  let json: Record<string, string> = {};
  try {
    json = JSON.parse(text) as Record<string, string>;
  } catch {
    // Not JSON: the caller looks at the status.
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

/**
 * How many rows of each kind the database holds, and how many artifacts are consumed: taken
 * before and after a refused request, it shows that nothing was created, used up or deleted.
 */
export async function rowCounts(ctx: SecurityContext) {
  const p = ctx.server.current.db.prisma;
  return {
    ...(await stored(ctx.server).counts()),
    users: await p.user.count(),
    clients: await p.client.count(),
    grants: await p.grant.count(),
    identities: await p.federatedIdentity.count(),
  };
}

/** RP-initiated logout as a browser completes it: the confirmation page, then its form, posted from here. */
export async function signOut(ctx: SecurityContext, ua: UserAgent, idTokenHint: string): Promise<Response> {
  const page = await ua.follow(oidc.buildEndSessionUrl(ctx.config, { id_token_hint: idTokenHint }));
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.res.text())![1]!;
  return ua.request(`${ctx.server.issuer}/session/end/confirm`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer },
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
  });
}
