
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPerson } from './helpers/cli.ts';
import { authorize, discover, loginAndExchange, redeemAtApp, REDIRECT_URI } from './helpers/flow.ts';
import { addAuthenticator, totpCode } from './helpers/mfa.ts';
import { passkeyOptions, SoftAuthenticator } from './helpers/passkeys.ts';
import { seed, withServices } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

/**
 * Second-factor policies (src/mfa/policy.ts): a client, a role or the server may require a second
 * factor; a person who has none adds one inside the sign-in, before the app gets a code.
 */
let server: TestServer;
beforeAll(async () => {
  server = await startServer({}, { issuerHost: 'localhost' });
});
afterAll(async () => {
  await server?.close();
});

const requireForClient = (clientId: string) => withServices(server.env, ({ clients }) => clients.update(clientId, { requireMfa: true }, { actor: 'cli' }));


/** The setup page's authenticator app form: the secret shown, and its enrolment id. */
function appForm(html: string) {
  return { secret: /id="secret">([A-Z2-7 ]+)</.exec(html)![1]!, factorId: /name="factorId" value="([^"]+)"/.exec(html)![1]! };
}

describe('a client that requires a second factor', () => {
  it('takes a person without one through adding an authenticator app inside the sign-in, shows the recovery codes once, and only then gives the app a code (amr pwd otp mfa)', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    await requireForClient(app.clientId);
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const pending = await authorize(ua, config, { login: { email: app.email, password: app.password }, consent: false });
    expect(pending.last.res.status).toBe(200);
    const html = await pending.last.res.text();
    expect(html).toContain('Set up two-step verification');
    expect(html).toContain('To continue to Test App');
    // Passkeys work on this issuer: both ways are offered.
    expect(html).toContain('Create passkey');
    const uid = new URL(pending.last.url).pathname.split('/')[2]!;

    // Nothing finishes the sign-in before the factor is added.
    const early = await ua.submit(pending.last.url, html, `/interaction/${uid}/two-step/setup/continue`, {});
    expect(early.url.startsWith(REDIRECT_URI)).toBe(false);
    const page = await ua.follow(`${server.issuer}/interaction/${uid}`);
    const setup = await page.res.text();
    const { secret, factorId } = appForm(setup);

    const wrong = await ua.submit(page.url, setup, formAction(setup, '/two-step/setup/app'), { factorId, name: 'Phone', code: totpCode(secret, -3) });
    expect(wrong.res.status).toBe(400);
    const again = await wrong.res.text();
    expect(again).toContain('That code is not right');
    // The same secret again, so that the app already set up still works.
    expect(appForm(again).secret).toBe(secret);

    const done = await ua.submit(page.url, again, formAction(again, '/two-step/setup/app'), { factorId, name: 'Phone', code: totpCode(secret) });
    expect(done.res.status).toBe(200);
    const codesPage = await done.res.text();
    expect([...codesPage.matchAll(/<li><code>([0-9a-z-]+)<\/code><\/li>/g)]).toHaveLength(10);
    const next = await ua.submit(done.url, codesPage, formAction(codesPage, '/two-step/setup/continue'), {}, REDIRECT_URI);
    const claims = (await redeemAtApp(ua, config, next, pending)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe('urn:idp:acr:mfa');
    const added = await server.current.db.prisma.auditEvent.findMany({ where: { target: app.userId, action: 'mfa.totp_added' } });
    expect(added).toHaveLength(1);
    expect(added[0]!.actor).toBe(`user:${app.userId}`);
  });

  it('or a passkey (amr pwd hwk mfa); a person who already has a factor is simply asked for it', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    await requireForClient(app.clientId);
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const pending = await authorize(ua, config, { login: { email: app.email, password: app.password }, consent: false });
    const html = await pending.last.res.text();
    const authenticator = new SoftAuthenticator(new URL(server.issuer).origin);
    const options = passkeyOptions<Parameters<SoftAuthenticator['register']>[0]>(html, '/two-step/setup/passkey');
    const done = await ua.submit(pending.last.url, html, formAction(html, '/two-step/setup/passkey'), { name: 'Laptop', response: JSON.stringify(authenticator.register(options)) });
    const codesPage = await done.res.text();
    const next = await ua.submit(done.url, codesPage, formAction(codesPage, '/two-step/setup/continue'), {}, REDIRECT_URI);
    const claims = (await redeemAtApp(ua, config, next, pending)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);

    // Another person with an authenticator app already: the usual code page.
    const other = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { secret } = await addAuthenticator(server.env, other);
    await requireForClient(other.clientId);
    const otherConfig = await discover(server.issuer, other.clientId, other.clientSecret);
    const ua2 = new UserAgent();
    const step = await authorize(ua2, otherConfig, { login: { email: other.email, password: other.password }, consent: false });
    const codePage = await step.last.res.text();
    expect(codePage).toContain('6-digit code');
    const signedIn = await ua2.submit(step.last.url, codePage, formAction(codePage, '/two-step'), { code: totpCode(secret, 1) }, REDIRECT_URI);
    expect(((await redeemAtApp(ua2, otherConfig, signedIn, step)).claims()!).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('asks a browser already signed in with a password alone (to an app that does not require it) for the factor, not for the password', async () => {
    const relaxed = await seed(server.env, { redirectUri: REDIRECT_URI });
    const relaxedConfig = await discover(server.issuer, relaxed.clientId, relaxed.clientSecret);
    const strict = await withServices(server.env, ({ clients }) => clients.create({ name: 'Strict App', redirectUris: [REDIRECT_URI], grantTypes: ['authorization_code'], scope: 'openid', requireMfa: true }, { actor: 'cli' }));
    const strictConfig = await discover(server.issuer, strict.client.clientId, strict.clientSecret);
    const ua = new UserAgent();
    const first = await loginAndExchange(ua, relaxedConfig, { login: { email: relaxed.email, password: relaxed.password } });
    expect(first.tokens.claims()!.amr).toEqual(['pwd']);

    const pending = await authorize(ua, strictConfig, { scope: 'openid', consent: false });
    const html = await pending.last.res.text();
    expect(html).toContain('Set up two-step verification');
    expect(html).not.toContain('id="password"');
    const { secret, factorId } = appForm(html);
    const done = await ua.submit(pending.last.url, html, formAction(html, '/two-step/setup/app'), { factorId, name: 'Phone', code: totpCode(secret) });
    const codesPage = await done.res.text();
    const next = await ua.submit(done.url, codesPage, formAction(codesPage, '/two-step/setup/continue'), {}, REDIRECT_URI);
    const claims = (await redeemAtApp(ua, strictConfig, next, pending)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);

    // The session now has its second factor: the strict app signs in at once.
    const silent = await authorize(ua, strictConfig, { scope: 'openid', prompt: 'none', consent: false });
    expect(silent.callbackUrl.searchParams.get('code')).toBeTruthy();
  });
});

describe('a role that requires a second factor', () => {
  it('applies to administrators signing in to the console', async () => {
    await withServices(server.env, ({ roles }) => roles.update('idp-admin', { requireMfa: true }, { actor: 'cli' }));
    try {
      const { email } = await createPerson(server.env, 'a long enough password', ['idp-admin']);
      const redirectUri = `${server.issuer}/console/callback`;
      const config = await discover(server.issuer, 'idp-console');
      const pending = await authorize(new UserAgent(), config, { scope: 'openid admin', resource: 'urn:idp:admin', login: { email, password: 'a long enough password' }, consent: false, redirectUri });
      expect(pending.last.url.startsWith(redirectUri)).toBe(false);
      expect(await pending.last.res.text()).toContain('Set up two-step verification');

      // A person without the role goes on with the password alone.
      const app = await seed(server.env, { redirectUri: REDIRECT_URI });
      const plain = await loginAndExchange(new UserAgent(), await discover(server.issuer, app.clientId, app.clientSecret), { login: { email: app.email, password: app.password } });
      expect(plain.tokens.claims()!.amr).toEqual(['pwd']);
    } finally {
      await withServices(server.env, ({ roles }) => roles.update('idp-admin', { requireMfa: false }, { actor: 'cli' }));
    }
  });
});

describe('MFA=required', () => {
  it('takes everyone without a second factor through adding one', async () => {
    const strictServer = await startServer({ MFA: 'required' });
    try {
      const app = await seed(strictServer.env, { redirectUri: REDIRECT_URI });
      const config = await discover(strictServer.issuer, app.clientId, app.clientSecret);
      const pending = await authorize(new UserAgent(), config, { login: { email: app.email, password: app.password }, consent: false });
      const html = await pending.last.res.text();
      expect(html).toContain('Set up two-step verification');
      // On an IP address, browsers refuse passkeys: the authenticator app only.
      expect(html).not.toContain('Create passkey');
    } finally {
      await strictServer.close();
    }
  });
});
