import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from './helpers/cli.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let app: Awaited<ReturnType<typeof seed>>;
let config: Awaited<ReturnType<typeof discover>>;

beforeAll(async () => {
  server = await startServer();
  app = await seed(server.env, { redirectUri: REDIRECT_URI });
  config = await discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server?.close());

describe('browser sessions', () => {
  it('never authenticate a session id planted before the login (session fixation)', async () => {
    const victim = new UserAgent();
    // An attacker plants a session id (and would keep a copy of it).
    victim.cookies.set('_session', 'attacker-chosen-session-id');
    await loginAndExchange(victim, config, { login: app });
    expect(victim.cookies.get('_session')).toBeTruthy();
    expect(victim.cookies.get('_session')).not.toBe('attacker-chosen-session-id');

    // The attacker's copy of the planted id is not signed in.
    const attacker = new UserAgent();
    attacker.cookies.set('_session', 'attacker-chosen-session-id');
    const silent = await authorize(attacker, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
  });

  it('keeps only ids in cookies, all HttpOnly and SameSite=Lax', async () => {
    const ua = new UserAgent();
    await loginAndExchange(ua, config, { login: app });
    const set = ua.setCookieLines.filter((l) => !/expires=Thu, 01 Jan 1970/i.test(l));
    expect(set.length).toBeGreaterThan(2);
    for (const line of set) {
      expect(line, line).toMatch(/;\s*httponly/i);
      expect(line, line).toMatch(/;\s*samesite=lax/i);
      // No user data in cookies: values are opaque ids, signatures or signed ids.
      expect(line).not.toContain(app.email);
    }
    // The state is in the database, under the id the cookie holds.
    const session = await server.current.db.prisma.oidcPayload.findUnique({ where: { model_id: { model: 'Session', id: ua.cookies.get('_session')! } } });
    expect(session?.accountId).toBe(app.userId);
  });

  it('refuses a logout confirmation posted from another site, even with the right token', async () => {
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, config, { login: app });
    const page = await ua.follow(`${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: tokens.id_token!, client_id: app.clientId })}`);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.res.text())![1]!;
    const confirm = (origin: string, site: string) =>
      ua.request(`${server.issuer}/session/end/confirm`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': site },
        body: new URLSearchParams({ xsrf, logout: 'yes' }),
      });
    const forged = await confirm('https://evil.example', 'cross-site');
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('You are still signed in');
    const still = await authorize(ua, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(still.callbackUrl.searchParams.get('code')).toBeTruthy();
  });
});
