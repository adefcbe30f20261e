// The authorization endpoint and code redemption: RFC 9700 §2.1, §4.1, §4.5; RFC 7636; RFC 9207;
// OpenID conformance oidcc-* (state, nonce, ensure-request-without-*).
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { createdClient, idp, idpOk } from '../helpers/cli.ts';
import { seed } from '../helpers/seed.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';
import { basic, post, rowCounts, securityContext } from './setup.ts';
import { stored } from '../helpers/stored.ts';

const ctx = securityContext();
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

function authorizationUrl(params: Record<string, string | null>, repeat: [string, string][] = []) {
  const url = new URL(`${ctx.server.issuer}/authorize`);
  const base: Record<string, string | null> = { client_id: ctx.app.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 'st-1', code_challenge: CHALLENGE, code_challenge_method: 'S256', ...params };
  for (const [k, v] of Object.entries(base)) if (v !== null) url.searchParams.set(k, v);
  for (const [k, v] of repeat) url.searchParams.append(k, v);
  return url;
}

const errorOf = async (url: URL) => {
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  return { status: res.status, location: location ? new URL(location, ctx.server.issuer) : null };
};

const redeem = (code: string, verifier: string, extra: Record<string, string> = {}, client = ctx.app) =>
  post(ctx, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, ...extra }, { authorization: basic(client.clientId, client.clientSecret!) });

describe('authorization requests', () => {
  it.each([['client_id']])('SEC-AZ-01 a repeated %s is refused with an error page, never a redirect', async (name) => {
    const { status, location } = await errorOf(authorizationUrl({}, [[name, 'other-value']]));
    expect(status).toBe(400);
    expect(location).toBeNull();
  });

  it.each([['redirect_uri'], ['scope'], ['state'], ['response_type'], ['code_challenge']])('SEC-AZ-01 a repeated %s is refused with invalid_request, sent only to the registered redirect URI', async (name) => {
    const { status, location } = await errorOf(authorizationUrl({}, [[name, 'other-value']]));
    expect(status).toBe(303);
    expect(location!.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(location!.searchParams.get('error')).toBe('invalid_request');
  });

  it('SEC-AZ-02 unknown parameters are ignored, not reflected', async () => {
    const { status, location } = await errorOf(authorizationUrl({ unknown_param: '<script>x</script>' }));
    expect(status).toBe(303);
    expect(location!.pathname).toMatch(/^\/interaction\//);
    expect(location!.href).not.toContain('script');
  });

  it('SEC-AZ-03 an error response echoes state and carries iss (RFC 9207)', async () => {
    const { location } = await errorOf(authorizationUrl({ code_challenge: null, code_challenge_method: null, state: 'echo-me' }));
    expect(location!.searchParams.get('state')).toBe('echo-me');
    expect(location!.searchParams.get('iss')).toBe(ctx.server.issuer);
  });

  it('SEC-AZ-04 a success response echoes state and carries iss, and the ID token carries the nonce', async () => {
    const ua = new UserAgent();
    const r = await authorize(ua, ctx.config, { login: ctx.app, scope: 'openid' });
    expect(r.callbackUrl.searchParams.get('state')).toBe(r.state);
    expect(r.callbackUrl.searchParams.get('iss')).toBe(ctx.server.issuer);
    const tokens = await oidc.authorizationCodeGrant(ctx.config, r.callbackUrl, { pkceCodeVerifier: r.codeVerifier, expectedState: r.state, expectedNonce: r.nonce });
    expect(tokens.claims()!.nonce).toBe(r.nonce);
  });

  it('SEC-AZ-05 prompt=none without a session: login_required at the redirect URI', async () => {
    const { location } = await errorOf(authorizationUrl({ prompt: 'none' }));
    expect(location!.searchParams.get('error')).toBe('login_required');
  });

  it('SEC-AZ-06 an unknown client: an error page, never a redirect', async () => {
    const { status, location } = await errorOf(authorizationUrl({ client_id: 'no-such-client' }));
    expect(status).toBe(400);
    expect(location).toBeNull();
  });

  it('SEC-AZ-07 an unsigned request object (alg none) is refused: request objects must be signed with a key the client registered (SEC-JAR-01 to 03)', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ client_id: ctx.app.clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid' })).toString('base64url');
    const { status, location } = await errorOf(authorizationUrl({ request: `${header}.${body}.` }));
    expect(status).toBe(303);
    expect(location!.searchParams.get('error')).toBe('invalid_request_object');
  });

  it('SEC-AZ-09 an unregistered resource is refused with invalid_target', async () => {
    const { status, location } = await errorOf(authorizationUrl({ resource: 'https://unknown.example.com' }));
    expect(status).toBe(303);
    expect(location!.searchParams.get('error')).toBe('invalid_target');
  });

  it.each([['token'], ['id_token token'], ['none'], ['id_token'], ['code id_token'], ['code token']])('SEC-AZ-08 response_type=%s is refused (no tokens in the front channel)', async (rt) => {
    const { status, location } = await errorOf(authorizationUrl({ response_type: rt }));
    expect(status).toBe(303);
    expect(location!.href).not.toMatch(/access_token=|id_token=/);
    expect(location!.searchParams.get('error') ?? new URLSearchParams(location!.hash.slice(1)).get('error')).toBe('unsupported_response_type');
  });
});

describe('POST to the authorization and end-session endpoints (OIDC Core §3.1.2.1, RP-Initiated Logout §2)', () => {
  /** The verifier of CHALLENGE (RFC 7636, appendix B). */
  const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
  /** A form another site's page posts here: under SameSite=Lax the browser sends no cookie of ours with it. */
  const crossSitePost = (path: string, body: BodyInit, type = 'application/x-www-form-urlencoded') =>
    fetch(`${ctx.server.issuer}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': type, origin: 'https://rp.example.com', 'sec-fetch-site': 'cross-site' }, body });
  const sorted = (params: URLSearchParams) => [...params].sort(([a], [b]) => a.localeCompare(b));

  it('SEC-AZ-10 a form POSTed to /authorize is answered 303 (no-store) to the same request as a GET, with the same parameters, and nothing is stored before that GET', async () => {
    const sent = authorizationUrl({ state: 'posted', nonce: 'n-é&=' }).searchParams;
    const before = await rowCounts(ctx);
    const res = await crossSitePost('/authorize', sent);
    expect(res.status).toBe(303);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const location = new URL(res.headers.get('location')!, ctx.server.issuer);
    expect(location.origin + location.pathname).toBe(`${ctx.server.issuer}/authorize`);
    expect(sorted(location.searchParams)).toEqual(sorted(sent));
    expect(await rowCounts(ctx)).toEqual(before);
    // The GET it leads to is the usual one: on to the sign-in.
    const { status, location: next } = await errorOf(location);
    expect(status).toBe(303);
    expect(next!.pathname).toMatch(/^\/interaction\//);
  });

  it.each([
    ['a JSON body', 'application/json', JSON.stringify({ client_id: 'x', response_type: 'code' })],
    ['a text/plain body', 'text/plain', 'client_id=x&response_type=code'],
    ['a multipart body', 'multipart/form-data; boundary=b', '--b\r\ncontent-disposition: form-data; name="client_id"\r\n\r\nx\r\n--b--\r\n'],
  ])('SEC-AZ-11 a POST to /authorize with %s is refused with 400 invalid_request, never a redirect', async (_name, type, body) => {
    const res = await crossSitePost('/authorize', body, type);
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('cache-control')).toBe('no-store');
    const answer = (await res.json()) as { error: string; error_description: string };
    expect(answer.error).toBe('invalid_request');
    expect(answer.error_description).toContain('application/x-www-form-urlencoded');
  });

  it('SEC-AZ-12 more than 8 KiB of parameters POSTed to /authorize: 413, pointing to pushed authorization requests (PAR)', async () => {
    const sent = authorizationUrl({ state: 'x'.repeat(9000) }).searchParams;
    const res = await crossSitePost('/authorize', sent);
    expect(res.status).toBe(413);
    expect(res.headers.get('location')).toBeNull();
    const answer = (await res.json()) as { error: string; error_description: string };
    expect(answer.error).toBe('invalid_request');
    expect(answer.error_description).toContain('PAR');
    expect(answer.error_description).toContain('/par');
    // Well past it (below the 56 KiB the server reads at all): the same answer, read whole by the client.
    const large = await crossSitePost('/authorize', authorizationUrl({ state: 'x'.repeat(50_000) }).searchParams);
    expect(large.status).toBe(413);
    expect(((await large.json()) as { error_description: string }).error_description).toContain('PAR');
    // Just under the limit is still redirected.
    const fits = authorizationUrl({ state: 'x'.repeat(7000) }).searchParams;
    expect((await crossSitePost('/authorize', fits)).status).toBe(303);
  });

  it('SEC-AZ-13 a signed-in browser\'s cross-site form POST (no cookie sent with it) goes on, after the 303, with the session: a code without a new sign-in', async () => {
    const ua = new UserAgent();
    await authorize(ua, ctx.config, { login: ctx.app, scope: 'openid' });
    const res = await crossSitePost('/authorize', authorizationUrl({ state: 'posted' }).searchParams);
    expect(res.status).toBe(303);
    // The browser follows the 303 as a top-level GET, which carries its SameSite=Lax session cookie.
    const landed = await ua.follow(new URL(res.headers.get('location')!, ctx.server.issuer), REDIRECT_URI);
    expect(landed.url.startsWith(REDIRECT_URI), 'a page was shown instead').toBe(true);
    const callback = new URL(landed.url);
    expect(callback.searchParams.get('state')).toBe('posted');
    expect(callback.searchParams.get('iss')).toBe(ctx.server.issuer);
    const token = await redeem(callback.searchParams.get('code')!, VERIFIER);
    expect(token.status).toBe(200);
    const payload = JSON.parse(Buffer.from(token.body.id_token!.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string };
    expect(payload).toMatchObject({ sub: ctx.app.userId, aud: ctx.app.clientId });
  });

  it('SEC-AZ-14 a form POSTed to /session/end is answered 303 (no-store) to the GET logout page with the same parameters; the person confirms there and is signed out', async () => {
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, ctx.config, { login: ctx.app, scope: 'openid' });
    const sent = new URLSearchParams({ id_token_hint: tokens.id_token!, client_id: ctx.app.clientId, state: 'bye' });
    const res = await crossSitePost('/session/end', sent);
    expect(res.status).toBe(303);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const location = new URL(res.headers.get('location')!, ctx.server.issuer);
    expect(location.origin + location.pathname).toBe(`${ctx.server.issuer}/session/end`);
    expect(sorted(location.searchParams)).toEqual(sorted(sent));
    const page = await ua.follow(location);
    expect(page.res.status).toBe(200);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.res.text())?.[1];
    expect(xsrf, 'no logout confirmation form').toBeTruthy();
    const confirmed = await ua.request(`${ctx.server.issuer}/session/end/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
    });
    expect(confirmed.status).toBeLessThan(400);
    // Signed out: prompt=none now finds no session.
    const again = await ua.follow(authorizationUrl({ prompt: 'none' }), REDIRECT_URI);
    expect(new URL(again.url).searchParams.get('error')).toBe('login_required');
  });
});

describe('redirect_uri: exact match against the registered value', () => {
  it.each([
    ['a trailing slash', `${REDIRECT_URI}/`],
    ['an added query', `${REDIRECT_URI}?next=/`],
    ['another path', 'http://127.0.0.1:8765/callback2'],
    ['dot segments', 'http://127.0.0.1:8765/x/../callback'],
    ['another path case', 'http://127.0.0.1:8765/Callback'],
    ['another scheme case', 'HTTP://127.0.0.1:8765/callback'],
    ['another port', 'http://127.0.0.1:8766/callback'],
    ['another scheme', 'https://127.0.0.1:8765/callback'],
    ['a fragment', `${REDIRECT_URI}#x`],
    ['userinfo', 'http://user@127.0.0.1:8765/callback'],
    ['percent-encoding', 'http://127.0.0.1:8765/%63allback'],
    ['another host', 'https://evil.example/callback'],
    ['a javascript: URI', 'javascript:alert(1)'],
    ['a relative reference', '/callback'],
  ])('SEC-RU-01 a redirect_uri with %s: an error page, never a redirect, nothing stored', async (_name, redirectUri) => {
    const before = await rowCounts(ctx);
    const res = await fetch(authorizationUrl({ redirect_uri: redirectUri }), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('redirect_uri did not match any of the client&#39;s registered redirect_uris');
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-RU-02 the registered value itself is accepted (control)', async () => {
    const { status, location } = await errorOf(authorizationUrl({}));
    expect(status).toBe(303);
    expect(location!.pathname).toMatch(/^\/interaction\//);
  });

  it('SEC-RU-03 a native app\'s loopback redirect URI matches any port (RFC 8252 §7.3), and nothing else about it changes', async () => {
    const app = await idp(
      ['clients', 'create', '--name', 'CLI tool', '--public', '--application-type', 'native', '--redirect-uri', 'http://127.0.0.1/callback', '--redirect-uri', 'http://[::1]/callback', '--scope', 'openid', '--json'],
      ctx.server.env,
    );
    const { clientId } = createdClient(app);
    const at = (redirectUri: string) => errorOf(authorizationUrl({ client_id: clientId, redirect_uri: redirectUri }));
    for (const accepted of ['http://127.0.0.1:54321/callback', 'http://127.0.0.1/callback', 'http://[::1]:8080/callback']) {
      const { status, location } = await at(accepted);
      expect(status, accepted).toBe(303);
      expect(location!.pathname).toMatch(/^\/interaction\//);
    }
    for (const refused of ['http://127.0.0.1:54321/other', 'http://localhost:54321/callback', 'https://127.0.0.1:54321/callback', 'http://127.0.0.1:54321/callback?x=1']) {
      const { status, location } = await at(refused);
      expect(status, refused).toBe(400);
      expect(location).toBeNull();
    }

    // The code goes to the port the app opened, and is redeemed with that redirect URI.
    const ua = new UserAgent();
    const redirectUri = 'http://127.0.0.1:54321/callback';
    let step = await ua.follow(authorizationUrl({ client_id: clientId, redirect_uri: redirectUri, state: 'native' }), redirectUri);
    let html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/login'), { email: ctx.app.email, password: ctx.app.password }, redirectUri);
    html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/confirm'), {}, redirectUri);
    const code = new URL(step.url).searchParams.get('code')!;
    const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
    const res = await post(ctx, '/token', { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: VERIFIER, client_id: clientId });
    expect(res.status).toBe(200);
    expect(res.body.id_token).toBeTruthy();
  });

  it('SEC-RU-04 a web app\'s loopback redirect URI still matches exactly; a native app cannot register https on a loopback host', async () => {
    const { status } = await errorOf(authorizationUrl({ redirect_uri: REDIRECT_URI.replace(':8765', ':8766') }));
    expect(status).toBe(400);
    const refused = await idp(['clients', 'create', '--name', 'x', '--public', '--application-type', 'native', '--redirect-uri', 'https://localhost/cb', '--json'], ctx.server.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('native app');
  });
});

describe('PKCE', () => {
  it.each([
    ['missing', { code_challenge: null, code_challenge_method: null }],
    ['plain', { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }],
    ['malformed (too short)', { code_challenge: 'short' }],
    ['of an unknown method', { code_challenge_method: 'S512' }],
  ])('SEC-PK-01 a code_challenge %s: invalid_request at the redirect URI with state, nothing stored', async (_name, overrides) => {
    const before = await rowCounts(ctx);
    const { status, location } = await errorOf(authorizationUrl(overrides));
    expect(status).toBe(303);
    expect(location!.href.startsWith(`${REDIRECT_URI}?`)).toBe(true);
    expect(location!.searchParams.get('error')).toBe('invalid_request');
    expect(location!.searchParams.get('state')).toBe('st-1');
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-PK-02 a wrong verifier is refused with invalid_grant, and the code still works for its owner', async () => {
    const r = await authorize(new UserAgent(), ctx.config, { login: ctx.app, scope: 'openid' });
    const code = r.callbackUrl.searchParams.get('code')!;
    const wrong = await redeem(code, oidc.randomPKCECodeVerifier());
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
    expect((await redeem(code, r.codeVerifier)).status).toBe(200);
  });
});

describe('PKCE opt-out for legacy apps', () => {
  it('SEC-PK-03 only an admin lets a confidential client skip PKCE, which then must send a nonce: a public client cannot, a registrant cannot, and a challenge sent is still checked', async () => {
    const created = JSON.parse(await idpOk(['clients', 'create', '--name', 'Legacy', '--redirect-uri', REDIRECT_URI, '--require-pkce', 'false', '--json'], ctx.server.env)) as { client: { clientId: string; requirePkce: boolean }; clientSecret: string };
    expect(created.client.requirePkce).toBe(false);
    const legacy = created.client.clientId;
    // The CLI says so, whenever it shows the client.
    const shown = await idp(['clients', 'show', legacy], ctx.server.env);
    expect(shown.stderr).toContain(`warning: ${legacy} may sign people in without PKCE`);
    // Without PKCE, the nonce protects the code (RFC 9700 §2.1.1): a request without it, or
    // without the openid scope, is refused at the redirect URI.
    for (const params of [{ nonce: null }, { nonce: 'n-1', scope: 'profile' }] as Record<string, string | null>[]) {
      const { location } = await errorOf(authorizationUrl({ client_id: legacy, code_challenge: null, code_challenge_method: null, ...params }));
      expect(location!.searchParams.get('error'), JSON.stringify(params)).toBe('invalid_request');
      expect(location!.searchParams.get('error_description')).toContain('nonce');
    }
    // With it: a sign-in and a code, redeemed with the secret alone.
    const url = authorizationUrl({ client_id: legacy, code_challenge: null, code_challenge_method: null, nonce: 'n-1' });
    const ua = new UserAgent();
    let step = await ua.follow(url, REDIRECT_URI);
    const html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/login'), { email: ctx.app.email, password: ctx.app.password }, REDIRECT_URI);
    if (!step.url.startsWith(REDIRECT_URI)) {
      const consent = await step.res.text();
      step = await ua.submit(step.url, consent, formAction(consent, '/confirm'), {}, REDIRECT_URI);
    }
    const code = new URL(step.url).searchParams.get('code')!;
    const token = await post(ctx, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }, { authorization: basic(legacy, created.clientSecret) });
    expect(token.status).toBe(200);
    // A challenge it sends is checked all the same.
    const withChallenge = await authorize(ua, await discover(ctx.server.issuer, legacy, created.clientSecret), { scope: 'openid', consent: false });
    const wrong = await post(ctx, '/token', { grant_type: 'authorization_code', code: withChallenge.callbackUrl.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: oidc.randomPKCECodeVerifier() }, { authorization: basic(legacy, created.clientSecret) });
    expect(wrong.status).toBe(400);

    const publicClient = await idp(['clients', 'create', '--name', 'x', '--public', '--redirect-uri', REDIRECT_URI, '--require-pkce', 'false'], ctx.server.env);
    expect(publicClient.code).toBe(1);
    expect(publicClient.stderr).toContain('always uses PKCE');
    // A dynamic registration cannot ask for it.
    const iat = (await idp(['clients', 'initial-access-token', 'create', '--json'], ctx.server.env)).json<{ initialAccessToken: string }>().initialAccessToken;
    const registered = await fetch(`${ctx.server.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` },
      body: JSON.stringify({ client_name: 'Registrant', redirect_uris: [REDIRECT_URI], require_pkce: false }),
    });
    expect(registered.status).toBe(400);
    expect(await registered.json()).toMatchObject({ error: 'invalid_client_metadata' });
    // Everyone else still needs it.
    const { location } = await errorOf(authorizationUrl({ code_challenge: null, code_challenge_method: null }));
    expect(location!.searchParams.get('error')).toBe('invalid_request');
  });
});

describe('response modes', () => {
  it('SEC-RM-01 form_post: an auto-posting form to the registered redirect URI with code, state and iss; never cached or framed', async () => {
    const r = await authorize(new UserAgent(), ctx.config, { login: ctx.app, scope: 'openid', extra: { response_mode: 'form_post' } });
    const res = r.last.res;
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).toContain(`action="${REDIRECT_URI}"`);
    expect(html).toMatch(/name="code" value="[^"]+"/);
    expect(html).toContain(`name="state" value="${r.state}"`);
    expect(html).toContain(`name="iss" value="${ctx.server.issuer}"`);
  });

  it('SEC-RM-02 form_post with an unregistered redirect_uri: an error page, no form', async () => {
    const res = await fetch(authorizationUrl({ response_mode: 'form_post', redirect_uri: 'https://evil.example/cb' }));
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).not.toContain('evil.example');
    expect(html).not.toContain('<form');
  });

  it.each([['query.jwt'], ['web_message'], ['nonsense']])('SEC-RM-03 response_mode=%s is refused with unsupported_response_mode', async (mode) => {
    const before = await rowCounts(ctx);
    const { status, location } = await errorOf(authorizationUrl({ response_mode: mode }));
    expect(status).toBe(303);
    expect(location!.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(location!.searchParams.get('error')).toBe('unsupported_response_mode');
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-RM-04 a fragment-mode error stays in the fragment, with state and iss', async () => {
    const { location } = await errorOf(authorizationUrl({ response_mode: 'fragment', code_challenge: null, code_challenge_method: null }));
    const fragment = new URLSearchParams(location!.hash.slice(1));
    expect(location!.search).toBe('');
    expect(fragment.get('error')).toBe('invalid_request');
    expect(fragment.get('state')).toBe('st-1');
    expect(fragment.get('iss')).toBe(ctx.server.issuer);
  });
});

describe('code redemption', () => {
  const codeFor = async () => {
    const r = await authorize(new UserAgent(), ctx.config, { login: ctx.app, scope: 'openid' });
    return { code: r.callbackUrl.searchParams.get('code')!, verifier: r.codeVerifier };
  };

  it('SEC-CR-01 a code redeemed by another client is refused', async () => {
    const { code, verifier } = await codeFor();
    const other = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const res = await redeem(code, verifier, {}, other);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-02 a code redeemed with another redirect_uri is refused', async () => {
    const { code, verifier } = await codeFor();
    const res = await redeem(code, verifier, { redirect_uri: 'http://127.0.0.1:8765/other' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-03 PKCE downgrade: a code issued with a challenge, redeemed without a verifier, is refused', async () => {
    const { code } = await codeFor();
    const res = await post(ctx, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-05 a replayed code is refused, and what the first redemption issued is revoked', async () => {
    const { tokens, callbackUrl, codeVerifier } = await loginAndExchange(new UserAgent(), ctx.config, { login: ctx.app });
    const replay = await redeem(callbackUrl.searchParams.get('code')!, codeVerifier);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    await expect(oidc.refreshTokenGrant(ctx.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const userinfo = await fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(401);
  });

  it('SEC-CR-06 of 8 parallel redemptions of one code, exactly one succeeds', async () => {
    const { code, verifier } = await codeFor();
    const results = await Promise.all(Array.from({ length: 8 }, () => redeem(code, verifier)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) expect(r.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-07 an expired code is refused', async () => {
    const { code, verifier } = await codeFor();
    // Age the stored code past its lifetime instead of waiting for it.
    await stored(ctx.server).expire('AuthorizationCode');
    const res = await redeem(code, verifier);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-08 a made-up code is refused, and nothing changes', async () => {
    const before = await rowCounts(ctx);
    const res = await redeem('not-a-code', oidc.randomPKCECodeVerifier());
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-CR-04 a verifier of the wrong length is refused', async () => {
    const { code } = await codeFor();
    const res = await redeem(code, 'short');
    expect(res.status).toBe(400);
    expect(['invalid_request', 'invalid_grant']).toContain(res.body.error);
  });
});
