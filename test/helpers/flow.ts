import * as oidc from 'openid-client';
import { expect } from 'vitest';
import { formAction, type UserAgent } from './user-agent.ts';

export const REDIRECT_URI = 'http://127.0.0.1:8765/callback';

export async function discover(issuer: string, clientId: string, clientSecret?: string) {
  return oidc.discovery(new URL(issuer), clientId, clientSecret, clientSecret ? undefined : oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

export interface AuthorizeOptions {
  scope?: string;
  resource?: string;
  prompt?: string;
  /** Login credentials; omit when the session should already be signed in. */
  login?: { email: string; password: string };
  consent?: boolean;
  /** More authorization request parameters (response_mode, ...). */
  extra?: Record<string, string>;
  /** The client's redirect URI, when it is not REDIRECT_URI (a built-in client's, say). */
  redirectUri?: string;
}

/**
 * Runs the front-channel part of authorization code + PKCE through our real pages and returns
 * the callback URL the browser lands on, with what the client needs to redeem it.
 */
export async function authorize(ua: UserAgent, config: oidc.Configuration, opts: AuthorizeOptions = {}) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const redirectUri = opts.redirectUri ?? REDIRECT_URI;
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: opts.scope ?? 'openid profile email offline_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(opts.prompt ? { prompt: opts.prompt } : { prompt: 'consent' }),
    ...(opts.resource ? { resource: opts.resource } : {}),
    ...opts.extra,
  });

  let step = await ua.follow(url, redirectUri);
  if (opts.login) {
    expect(step.res.status).toBe(200);
    const html = await step.res.text();
    expect(html).toContain('Sign in');
    step = await ua.submit(step.url, html, formAction(html, '/login'), opts.login, redirectUri);
  }
  if (opts.consent !== false && !step.url.startsWith(redirectUri)) {
    expect(step.res.status).toBe(200);
    const html = await step.res.text();
    expect(html).toContain('Allow access');
    step = await ua.submit(step.url, html, formAction(html, '/confirm'), {}, redirectUri);
  }
  return { callbackUrl: new URL(step.url), codeVerifier, state, nonce, last: step };
}

export async function loginAndExchange(ua: UserAgent, config: oidc.Configuration, opts: AuthorizeOptions = {}) {
  const { callbackUrl, codeVerifier, state, nonce } = await authorize(ua, config, opts);
  expect(callbackUrl.href.startsWith(opts.redirectUri ?? REDIRECT_URI)).toBe(true);
  const tokens = await oidc.authorizationCodeGrant(
    config,
    callbackUrl,
    { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: (opts.scope ?? 'openid').includes('openid') },
    opts.resource ? { resource: opts.resource } : undefined,
  );
  return { tokens, callbackUrl, codeVerifier };
}

/** Past the sign-in: consents if the app asks (the test app does), and redeems the code as the app would. */
export async function redeemAtApp(ua: UserAgent, config: oidc.Configuration, step: { res: Response; url: string }, pending: { codeVerifier: string; state: string; nonce: string }) {
  let last = step;
  if (!last.url.startsWith(REDIRECT_URI)) {
    const html = await last.res.text();
    expect(html).toContain('Allow access');
    last = await ua.submit(last.url, html, formAction(html, '/confirm'), {}, REDIRECT_URI);
  }
  expect(last.url.startsWith(REDIRECT_URI)).toBe(true);
  return oidc.authorizationCodeGrant(config, new URL(last.url), { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce });
}
