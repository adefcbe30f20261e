import type * as oidc from 'openid-client';
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAccount, postAccount } from './helpers/account.ts';
import { authorize, discover, redeemAtApp, REDIRECT_URI } from './helpers/flow.ts';
import { addAuthenticator, passwordStep, sendCode, totpCode } from './helpers/mfa.ts';
import { addPasskey, passkeyOptions, SoftAuthenticator } from './helpers/passkeys.ts';
import { seed, withServices } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

/** Passkeys over HTTP, with a software authenticator (test/helpers/passkeys.ts); the pages in a browser: test/passkeys-browser.test.ts. */
let server: TestServer;
beforeAll(async () => {
  server = await startServer({}, { issuerHost: 'localhost' });
});
afterAll(async () => {
  await server?.close();
});

const audits = (userId: string, action: string) => server.current.db.prisma.auditEvent.findMany({ where: { target: userId, action } });


/** A sign-in up to its login page: the page, and the options of its "Sign in with a passkey" form. */
async function loginPage(ua: UserAgent, config: oidc.Configuration) {
  const pending = await authorize(ua, config, { consent: false });
  expect(pending.last.res.status).toBe(200);
  const html = await pending.last.res.text();
  return { pending, url: pending.last.url, html, options: passkeyOptions(html, '/passkey') };
}

describe('adding a passkey on the account page', () => {
  it('makes options for a discoverable credential of this person, keeps the public key, and shows ten recovery codes once for a first factor', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const account = await openAccount(server, ua, { email: app.email, password: app.password });
    expect(account.html).toContain('Passkeys');
    expect(account.html).toContain('href="/account/passkeys/add"');

    const add = await openAccount(server, ua, undefined, '/account/passkeys/add');
    expect(add.status).toBe(200);
    expect(add.html).toContain('<script src="/assets/webauthn.js" defer></script>');
    const options = passkeyOptions<PublicKeyCredentialCreationOptionsJSON>(add.html, '/account/passkeys/add');
    expect(options.rp).toEqual({ id: 'localhost', name: 'localhost' });
    expect(options.user.name).toBe(app.email);
    expect(Buffer.from(options.user.id, 'base64url').toString()).toBe(app.userId);
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'preferred' });
    expect(options.excludeCredentials).toEqual([]);

    const authenticator = new SoftAuthenticator(new URL(server.issuer).origin);
    const done = await postAccount(server, ua, add, '/account/passkeys/add', { name: 'Work laptop', response: JSON.stringify(authenticator.register(options)) });
    expect(done.status).toBe(200);
    const codes = [...(await done.text()).matchAll(/<li><code>([0-9a-z-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);
    const [row] = await server.current.db.prisma.passkey.findMany({ where: { userId: app.userId } });
    expect(row).toMatchObject({ name: 'Work laptop', credentialId: authenticator.credentialId.toString('base64url'), deviceType: 'singleDevice', counter: 0 });
    expect(await audits(app.userId, 'mfa.passkey_added')).toHaveLength(1);

    const after = await openAccount(server, ua);
    // The data download lists it, by kind and name: never its key or credential id.
    const download = await (await postAccount(server, ua, after, '/account/data')).text();
    expect(JSON.parse(download).secondFactors).toEqual({ items: [{ type: 'passkey', name: 'Work laptop', createdAt: expect.any(String), lastUsedAt: null }], recoveryCodesLeft: 10 });
    expect(download).not.toContain(row!.credentialId);
    expect(download).not.toContain(row!.publicKey);
    expect(after.html).toContain('Work laptop');
    expect(after.html).toContain('On one device or security key');
    expect(after.html).toContain('10 recovery codes left');

    // A second one: the first is excluded, so an authenticator does not make two for one account.
    const second = await openAccount(server, ua, undefined, '/account/passkeys/add');
    expect(passkeyOptions<PublicKeyCredentialCreationOptionsJSON>(second.html, '/account/passkeys/add').excludeCredentials).toEqual([{ id: row!.credentialId, type: 'public-key', transports: ['internal'] }]);
    // An answer that is not one: the page again, with what to do.
    const bad = await postAccount(server, ua, second, '/account/passkeys/add', { name: 'x', response: '{"id":' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('The passkey could not be verified');

    const removed = await postAccount(server, ua, after, `/account/passkeys/${row!.id}/remove`);
    expect(removed.status).toBe(303);
    expect(await server.current.db.prisma.passkey.count({ where: { userId: app.userId } })).toBe(0);
    // The last second factor gone, the recovery codes go with it.
    expect(await server.current.db.prisma.recoveryCode.count({ where: { userId: app.userId } })).toBe(0);
    expect(await audits(app.userId, 'mfa.passkey_removed')).toHaveLength(1);
  });
});

describe('signing in with a passkey alone', () => {
  it('the login page offers it (and the email field its autofill); a passkey that verified the person signs in: amr hwk user mfa, acr mfa, audited', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const authenticator = await addPasskey(server.env, app);
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const page = await loginPage(ua, config);
    expect(page.html).toContain('autocomplete="username webauthn"');
    expect(page.html).toContain('Sign in with a passkey');
    // Anyone's discoverable passkey, and the person must be verified on the device.
    expect(page.options).toMatchObject({ rpId: 'localhost', userVerification: 'required', allowCredentials: [] });

    const step = await ua.submit(page.url, page.html, formAction(page.html, '/passkey'), { response: JSON.stringify(authenticator.authenticate(page.options)) }, REDIRECT_URI);
    const claims = (await redeemAtApp(ua, config, step, page.pending)).claims()!;
    expect(claims.sub).toBe(app.userId);
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('urn:idp:acr:mfa');
    const [succeeded] = await audits(app.userId, 'login.succeeded');
    expect(JSON.parse(succeeded!.details!)).toMatchObject({ clientId: app.clientId, method: 'passkey' });
    const row = await server.current.db.prisma.passkey.findFirstOrThrow({ where: { userId: app.userId } });
    expect(row.lastUsedAt).not.toBeNull();
  });

  it('refuses a passkey that did not verify the person, a passkey of a disabled account, an unknown one, and an answer that is not one: the login page again, 401', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const presenceOnly = await addPasskey(server.env, app, { userVerification: false });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();

    // Presence only (no PIN, no biometrics), and a passkey this server never saw.
    for (const authenticator of [presenceOnly, new SoftAuthenticator(new URL(server.issuer).origin)]) {
      const page = await loginPage(ua, config);
      const res = await ua.submit(page.url, page.html, formAction(page.html, '/passkey'), { response: JSON.stringify(authenticator.authenticate(page.options)) });
      expect(res.res.status).toBe(401);
      expect(await res.res.text()).toContain('That passkey could not sign you in');
    }
    const page = await loginPage(ua, config);
    const garbage = await ua.submit(page.url, page.html, formAction(page.html, '/passkey'), { response: 'not json' });
    expect(garbage.res.status).toBe(401);

    // Disabled: the same answer as any other refusal.
    const verified = await addPasskey(server.env, app, { name: 'Phone' });
    await withServices(server.env, ({ users }) => users.setDisabled(app.userId, true, { actor: 'cli' }));
    const again = await loginPage(ua, config);
    const disabled = await ua.submit(again.url, again.html, formAction(again.html, '/passkey'), { response: JSON.stringify(verified.authenticate(again.options)) });
    expect(disabled.res.status).toBe(401);
    expect(await audits(app.userId, 'login.succeeded')).toHaveLength(0);
    // Recorded against the account only where the passkey verified (the disabled account's); the others proved no one.
    expect(await audits(app.userId, 'login.failed')).toHaveLength(1);
  });
});

describe('a passkey as the second step after a password', () => {
  it('is asked for first, for this person’s passkeys only; another person’s passkey is refused; the right one gives amr pwd hwk mfa', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const mine = await addPasskey(server.env, app);
    const other = await seed(server.env, { redirectUri: REDIRECT_URI });
    const theirs = await addPasskey(server.env, other);
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();

    const step = await passwordStep(ua, config, { email: app.email, password: app.password });
    expect(step.html).toContain('Use my passkey');
    // No authenticator app: no link to one; recovery codes always.
    expect(step.html).not.toContain('Use your authenticator app instead');
    expect(step.html).toContain('Use a recovery code instead');
    const options = passkeyOptions(step.html, '/two-step/passkey');
    expect(options.allowCredentials).toEqual([{ id: mine.credentialId.toString('base64url'), type: 'public-key', transports: ['internal'] }]);
    expect(options.userVerification).toBe('preferred');

    const refused = await ua.submit(step.url, step.html, formAction(step.html, '/two-step/passkey'), { response: JSON.stringify(theirs.authenticate(options)) });
    expect(refused.res.status).toBe(401);
    const html = await refused.res.text();
    expect(html).toContain('That passkey could not be verified');
    const retry = passkeyOptions(html, '/two-step/passkey');
    const done = await ua.submit(refused.url, html, formAction(html, '/two-step/passkey'), { response: JSON.stringify(mine.authenticate(retry)) }, REDIRECT_URI);
    const claims = (await redeemAtApp(ua, config, done, step.pending)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('urn:idp:acr:mfa');
  });

  it('with an authenticator app too: the passkey page links to the app’s, and a code works there', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { secret } = await addAuthenticator(server.env, app);
    await addPasskey(server.env, app);
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const step = await passwordStep(ua, config, { email: app.email, password: app.password });
    expect(step.html).toContain('Use your authenticator app instead');
    expect(step.html).toContain(`href="/interaction/${step.uid}/two-step/app"`);
    const appPage = await ua.follow(`${server.issuer}/interaction/${step.uid}/two-step/app`);
    const appHtml = await appPage.res.text();
    expect(appHtml).toContain('6-digit code');
    expect(appHtml).toContain('Use a passkey instead');
    const done = await sendCode(ua, { url: appPage.url, html: appHtml }, totpCode(secret, 1), REDIRECT_URI);
    const claims = (await redeemAtApp(ua, config, done, step.pending)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
  });
});

describe('administrators', () => {
  it('see a person’s passkeys among their factors, and a reset removes them', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    await addPasskey(server.env, app, { name: 'YubiKey' });
    const overview = await withServices(server.env, ({ mfa }) => mfa.overview(app.userId));
    expect(overview.items).toEqual([expect.objectContaining({ type: 'passkey', name: 'YubiKey' })]);
    expect(overview.recoveryCodesLeft).toBe(10);
    const removed = await withServices(server.env, ({ mfa }) => mfa.resetAll({ actor: 'cli' }, app.userId));
    expect(removed).toBe(1);
    expect(await server.current.db.prisma.passkey.count({ where: { userId: app.userId } })).toBe(0);
  });
});
