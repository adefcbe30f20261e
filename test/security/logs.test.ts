// Secrets never reach logs: ASVS V16.2.5 (7.1.1).
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../helpers/seed.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';
import { stored } from '../helpers/stored.ts';
import { captureLog } from '../helpers/log.ts';

const { lines, destination: capture } = captureLog();

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ LOG_LEVEL: 'trace' }, { logDestination: capture });
});
afterAll(() => server?.close());

describe('logs', () => {
  it('SEC-LG-01 logs never contain passwords, codes, tokens, cookies, client secrets or authorization headers', async () => {
    const seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
    const ua = new UserAgent();
    const { tokens, callbackUrl } = await loginAndExchange(ua, config, { login: seeded });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await oidc.fetchUserInfo(config, refreshed.access_token, seeded.userId);
    await oidc.tokenIntrospection(config, refreshed.access_token);
    await oidc.tokenRevocation(config, refreshed.refresh_token!);
    // A logout with the ID token in the query string, and a failing token request.
    await ua.follow(oidc.buildEndSessionUrl(config, { id_token_hint: refreshed.id_token! }));
    await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch(() => undefined);

    const secrets = {
      password: seeded.password,
      clientSecret: seeded.clientSecret!,
      basicAuth: Buffer.from(`${seeded.clientId}:${seeded.clientSecret}`).toString('base64'),
      code: callbackUrl.searchParams.get('code')!,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token!,
      idToken: refreshed.id_token!,
      // The interaction cookies' values are the interaction ids that the page URLs carry by
      // design; what makes them usable is their signature cookies, which are checked here.
      ...Object.fromEntries([...ua.cookies].filter(([name]) => !/^_interaction(_resume)?$/.test(name)).map(([name, value]) => [`cookie ${name}`, value])),
    };
    const log = lines.join('\n');
    expect(lines.length).toBeGreaterThan(20);
    expect(log).toContain('[REDACTED]');
    for (const [name, value] of Object.entries(secrets)) {
      expect(log.includes(value), `${name} appears in the logs`).toBe(false);
    }
  });

  it('SEC-LG-02 what is typed into the email field of a failed sign-in is kept nowhere: not in logs, audit events or throttling keys; repeats share one pseudonym', async () => {
    const seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
    const typed = 'MyOwnPassword-typed-in-the-email-field';
    for (let i = 0; i < 2; i++) {
      const ua = new UserAgent();
      const started = await authorize(ua, config, { consent: false });
      const html = await started.last.res.text();
      expect((await ua.submit(started.last.url, html, formAction(html, '/login'), { email: typed, password: 'anything at all' })).res.status).toBe(401);
    }
    const prisma = server.current.db.prisma;
    const failed = await prisma.auditEvent.findMany({ where: { action: 'login.failed' } });
    expect(failed).toHaveLength(2);
    const identifiers = failed.map((e) => (JSON.parse(e.details!) as { identifier: string }).identifier);
    expect(identifiers[0]).toMatch(/^account:[A-Za-z0-9_-]{22}$/);
    expect(identifiers[1]).toBe(identifiers[0]);
    const everywhere = [lines.join('\n'), JSON.stringify(await prisma.auditEvent.findMany()), await stored(server).throttleText()].join('\n').toLowerCase();
    expect(everywhere.includes(typed.toLowerCase())).toBe(false);
  });
});
