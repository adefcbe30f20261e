import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect } from 'vitest';
import { adminApi, type AdminApi } from './admin.ts';
import { seed } from './seed.ts';
import { authorize, discover, REDIRECT_URI } from './flow.ts';
import { freePort, startServer, type TestServer } from './server.ts';
import { startGoogleStandIn, type GoogleAccount, type Upstream } from './upstream.ts';
import { formAction, type UserAgent } from './user-agent.ts';

/** Our callback for an upstream provider. */
export const callback = (issuer: string, provider: string) => `${issuer}/interaction/callback/${provider}`;

/** Upstream provider ids the Google stand-in accepts callbacks for. */
const PROVIDERS = ['google', 'workspace', 'second'];

export interface FederationContext {
  server: TestServer;
  google: Upstream;
  admin: AdminApi;
  app: Awaited<ReturnType<typeof seed>>;
  config: oidc.Configuration;
}

/** One server with "Continue with Google" (a stand-in on loopback), an admin client and an app. */
export function federationContext(): FederationContext {
  const ctx = {} as FederationContext;
  beforeAll(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    ctx.google = await startGoogleStandIn(PROVIDERS.map((p) => callback(issuer, p)));
    ctx.server = await startServer({ GOOGLE_CLIENT_ID: ctx.google.clientId, GOOGLE_CLIENT_SECRET: ctx.google.clientSecret, GOOGLE_ISSUER: ctx.google.issuer }, { port });
    ctx.admin = await adminApi(ctx.server);
    ctx.app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    ctx.config = await discover(ctx.server.issuer, ctx.app.clientId, ctx.app.clientSecret);
  });
  afterAll(async () => {
    await ctx.server?.close();
    await ctx.google?.close();
  });
  return ctx;
}

let counter = 0;
/** A fresh upstream account (Google's claim shape). */
export const account = (extra: Partial<GoogleAccount> = {}): GoogleAccount => ({
  sub: `g-${++counter}-${Math.random().toString(36).slice(2)}`,
  email: `person${counter}-${Math.random().toString(36).slice(2, 6)}@example.com`,
  email_verified: true,
  name: `Person ${counter}`,
  picture: 'https://example.com/p.png',
  ...extra,
});

/** Our login page for a fresh authorization request of the test app. */
export async function loginPage(ctx: FederationContext, ua: UserAgent) {
  const started = await authorize(ua, ctx.config, { consent: false });
  const html = await started.last.res.text();
  return { url: started.last.url, html, state: started };
}

/** Presses a provider's button and follows every real redirect until we answer with a page or the app's callback. */
export async function pressButton(ctx: FederationContext, ua: UserAgent, provider = 'google') {
  const { url, html, state } = await loginPage(ctx, ua);
  expect(html).toContain(`/federated/${provider}"`);
  const step = await ua.submit(url, html, formAction(html, `/federated/${provider}`), {}, REDIRECT_URI);
  return { step, pending: state };
}

/** Finishes our consent page and redeems the code, as the app would. */
export async function finishAtApp(ctx: FederationContext, ua: UserAgent, step: { res: Response; url: string }, pending: Awaited<ReturnType<typeof authorize>>) {
  let current = step;
  if (!current.url.startsWith(REDIRECT_URI)) {
    const html = await current.res.text();
    expect(html).toContain('Allow access');
    current = await ua.submit(current.url, html, formAction(html, '/confirm'), {}, REDIRECT_URI);
  }
  return oidc.authorizationCodeGrant(ctx.config, new URL(current.url), {
    pkceCodeVerifier: pending.codeVerifier,
    expectedState: pending.state,
    expectedNonce: pending.nonce,
  });
}

export async function auditCount(ctx: FederationContext, action: string) {
  return (await ctx.admin.call<{ total: number }>('GET', `/admin/v1/audit?action=${action}`)).body.total;
}
