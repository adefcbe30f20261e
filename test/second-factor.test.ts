import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ageAccountSignIn, openAccount, postAccount } from './helpers/account.ts';
import { authorize, discover, redeemAtApp, REDIRECT_URI } from './helpers/flow.ts';
import { addAuthenticator, passwordStep, sendCode, totpCode } from './helpers/mfa.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let mailbox: Mailbox;
beforeAll(async () => {
  mailbox = await startMailbox();
  server = await startServer({ SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', PRODUCT_NAME: 'Acme' });
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
});

const audits = (userId: string, action: string) => server.current.db.prisma.auditEvent.findMany({ where: { target: userId, action } });


describe('adding an authenticator app on the account page', () => {
  it('shows a QR code and the secret as text; a first code from two steps ago is refused, the current one turns it on and shows ten recovery codes once', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const account = await openAccount(server, ua, { email: app.email, password: app.password });
    expect(account.html).toContain('Two-step verification');
    expect(account.html).toContain('href="/account/two-step/add"');

    const add = await openAccount(server, ua, undefined, '/account/two-step/add');
    expect(add.status).toBe(200);
    expect(add.html).toMatch(/<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
    const secret = /id="secret">([A-Z2-7 ]+)</.exec(add.html)![1]!;
    expect(secret).toMatch(/^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/);
    const factorId = /name="factorId" value="([^"]+)"/.exec(add.html)![1]!;
    // Stored encrypted, never as typed.
    const stored = await server.current.db.prisma.mfaFactor.findUniqueOrThrow({ where: { id: factorId } });
    expect(stored.secretEnc).not.toContain(secret.replace(/ /g, ''));
    expect(stored.confirmedAt).toBeNull();

    const stale = await postAccount(server, ua, add, '/account/two-step/add', { factorId, name: 'Phone', code: totpCode(secret, -2) });
    expect(stale.status).toBe(400);
    const again = { html: await stale.text() };
    expect(again.html).toContain('That code is not right');

    const done = await postAccount(server, ua, again, '/account/two-step/add', { factorId, name: 'Phone', code: totpCode(secret) });
    expect(done.status).toBe(200);
    const html = await done.text();
    const codes = [...html.matchAll(/<li><code>([0-9a-z-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    // Only hashes are kept.
    const rows = await server.current.db.prisma.recoveryCode.findMany({ where: { userId: app.userId } });
    expect(rows).toHaveLength(10);
    for (const row of rows) expect(codes.some((c) => row.codeHash.includes(c))).toBe(false);
    expect(await audits(app.userId, 'mfa.totp_added')).toHaveLength(1);

    const after = await openAccount(server, ua);
    expect(after.html).toContain('Phone');
    expect(after.html).toContain('10 recovery codes left');
    expect(after.html).not.toContain(codes[0]);
  });

  it('needs a recent sign-in: past it, the page sends the person to sign in again (with their second factor)', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { secret } = await addAuthenticator(server.env, app);
    const ua = new UserAgent();
    let step = await ua.follow(`${server.issuer}/account`);
    let html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/login'), { email: app.email, password: app.password });
    html = await step.res.text();
    expect(html).toContain('Two-step verification');
    step = await sendCode(ua, { url: step.url, html }, totpCode(secret, 1), `${server.issuer}/never`);
    expect(new URL(step.url).pathname).toBe('/account');
    await ageAccountSignIn(server, app.userId, 3600);
    const regenerate = await postAccount(server, ua, { html: await step.res.text() }, '/account/two-step/recovery-codes');
    expect(regenerate.status).toBe(303);
    expect(regenerate.headers.get('location')).toMatch(/^\/account\/sign-in\?.*reauth=1/);
  });
});

describe('signing in with a second factor', () => {
  it('password only: amr pwd and the password acr; password and a code: amr pwd, otp, mfa and the mfa acr', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const first = new UserAgent();
    const pending = await authorize(first, config, { login: { email: app.email, password: app.password }, consent: false });
    const plain = (await redeemAtApp(first, config, pending.last, pending)).claims()!;
    expect(plain.amr).toEqual(['pwd']);
    expect(plain.acr).toBe('urn:idp:acr:password');

    const { secret } = await addAuthenticator(server.env, app);
    const ua = new UserAgent();
    const step = await passwordStep(ua, config, { email: app.email, password: app.password });
    const answer = await sendCode(ua, step, totpCode(secret, 1), REDIRECT_URI);
    const claims = (await redeemAtApp(ua, config, answer, step.pending)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe('urn:idp:acr:mfa');
    const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as { acr_values_supported: string[] };
    expect(discovery.acr_values_supported).toContain('urn:idp:acr:mfa');
  });

  it('the access token says how the person signed in: introspection gives acr and amr, after a refresh too', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const { secret } = await addAuthenticator(server.env, app);
    const ua = new UserAgent();
    const step = await passwordStep(ua, config, { email: app.email, password: app.password });
    let last = await sendCode(ua, step, totpCode(secret, 1), REDIRECT_URI);
    const html = await last.res.text();
    last = await ua.submit(last.url, html, formAction(html, '/confirm'), {}, REDIRECT_URI);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(last.url), { pkceCodeVerifier: step.pending.codeVerifier, expectedState: step.pending.state, expectedNonce: step.pending.nonce });
    const described = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(described).toMatchObject({ active: true, acr: 'urn:idp:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(await oidc.tokenIntrospection(config, refreshed.access_token)).toMatchObject({ active: true, acr: 'urn:idp:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
  });

  it('a recovery code signs in once, is emailed and audited; regenerating ends the old set; removing the last app ends the second step', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const { recoveryCodes } = await addAuthenticator(server.env, app);
    const recover = async (code: string) => {
      const ua = new UserAgent();
      const step = await passwordStep(ua, config, { email: app.email, password: app.password });
      const page = await ua.follow(`${server.issuer}/interaction/${step.uid}/two-step/recovery`);
      const html = await page.res.text();
      expect(html).toContain('Recovery code');
      return { ua, step, answer: await sendCode(ua, { url: page.url, html }, code, REDIRECT_URI, true) };
    };
    // Typed as people do: upper case, spaces.
    const first = await recover(recoveryCodes[0]!.toUpperCase().replace(/-/g, ' '));
    const claims = (await redeemAtApp(first.ua, config, first.answer, first.step.pending)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    const mail = await mailbox.next(app.email);
    expect(mail.subject).toBe('A recovery code was used to sign in to Acme');
    expect(mail.text).toContain('Recovery codes left: 9');
    expect(mail.text).not.toContain(recoveryCodes[0]);
    const used = await audits(app.userId, 'mfa.recovery_code_used');
    expect(used).toHaveLength(1);
    expect(used[0]!.details).not.toContain(recoveryCodes[0]);

    const replayed = await recover(recoveryCodes[0]!);
    expect(replayed.answer.res.status).toBe(401);
    expect(await replayed.answer.res.text()).toContain('That recovery code is not right, or was already used.');

    // On the account page (signed in with another recovery code): 8 left; new codes end the old ones.
    const ua = new UserAgent();
    let step = await ua.follow(`${server.issuer}/account`);
    let html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/login'), { email: app.email, password: app.password });
    step = await ua.follow(`${new URL(step.url).origin}${new URL(step.url).pathname}/two-step/recovery`);
    html = await step.res.text();
    step = await sendCode(ua, { url: step.url, html }, recoveryCodes[1]!, `${server.issuer}/never`, true);
    html = await step.res.text();
    expect(html).toContain('8 recovery codes left');
    const regenerated = await postAccount(server, ua, { html }, '/account/two-step/recovery-codes');
    expect(regenerated.status).toBe(200);
    const fresh = [...(await regenerated.text()).matchAll(/<li><code>([0-9a-z-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    expect(fresh).toHaveLength(10);
    expect(await audits(app.userId, 'mfa.recovery_codes_regenerated')).toHaveLength(2);
    expect((await recover(recoveryCodes[2]!)).answer.res.status).toBe(401);

    // Removing the only app removes the recovery codes, and the password alone signs in again.
    const account = await openAccount(server, ua);
    const factor = /action="\/account\/two-step\/([^/"]+)\/remove"/.exec(account.html)![1]!;
    const removed = await postAccount(server, ua, account, `/account/two-step/${factor}/remove`);
    expect(removed.headers.get('location')).toBe('/account?done=mfa_removed');
    expect(await server.current.db.prisma.recoveryCode.count({ where: { userId: app.userId } })).toBe(0);
    expect(await audits(app.userId, 'mfa.totp_removed')).toHaveLength(1);
    const plain = await authorize(new UserAgent(), config, { login: { email: app.email, password: app.password }, consent: false });
    expect(await plain.last.res.text()).toContain('Allow access');
  });
});

const MFA_ACR = 'urn:idp:acr:mfa';
const ESSENTIAL_MFA = JSON.stringify({ id_token: { acr: { essential: true, value: MFA_ACR } } });

describe('step-up: an app asks a password-only session for the second factor', () => {
  /** A browser signed in with the password alone (before the person added an app). */
  async function passwordSession() {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const pending = await authorize(ua, config, { login: { email: app.email, password: app.password }, consent: false });
    expect(((await redeemAtApp(ua, config, pending.last, pending)).claims()!).acr).toBe('urn:idp:acr:password');
    return { app, config, ua };
  }

  it('acr_values=urn:idp:acr:mfa opens on the code page (no password form); the code gives acr mfa and amr pwd, otp, mfa', async () => {
    const { app, config, ua } = await passwordSession();
    const { secret } = await addAuthenticator(server.env, app);
    const pending = await authorize(ua, config, { consent: false, extra: { acr_values: MFA_ACR } });
    expect(pending.last.res.status).toBe(200);
    const html = await pending.last.res.text();
    expect(html).toContain('Two-step verification');
    expect(html).not.toContain('name="password"');
    const answer = await sendCode(ua, { url: pending.last.url, html }, totpCode(secret, 1), REDIRECT_URI);
    const claims = (await redeemAtApp(ua, config, answer, pending)).claims()!;
    expect(claims.acr).toBe(MFA_ACR);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    // The session now has the second factor: the app asking again gets it without a step.
    const again = await authorize(ua, config, { prompt: 'none', consent: false, extra: { acr_values: MFA_ACR } });
    expect(again.callbackUrl.searchParams.has('code')).toBe(true);
  });

  it('an essential acr claim asks for the code the same way', async () => {
    const { app, config, ua } = await passwordSession();
    const { secret } = await addAuthenticator(server.env, app);
    const pending = await authorize(ua, config, { consent: false, extra: { claims: ESSENTIAL_MFA } });
    const html = await pending.last.res.text();
    expect(html).toContain('Two-step verification');
    const answer = await sendCode(ua, { url: pending.last.url, html }, totpCode(secret, 1), REDIRECT_URI);
    expect(((await redeemAtApp(ua, config, answer, pending)).claims()!).acr).toBe(MFA_ACR);
    // An acr the code would not meet (federated) is no step-up: the login page.
    const federated = await authorize(ua, config, { consent: false, extra: { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'urn:idp:acr:federated' } } }) } });
    expect(await federated.last.res.text()).toContain('name="password"');
  });

  it('max_age=0 on a session with the second factor asks for both again: the password form, then the code', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const { secret, recoveryCodes } = await addAuthenticator(server.env, app);
    const ua = new UserAgent();
    const step = await passwordStep(ua, config, { email: app.email, password: app.password });
    await redeemAtApp(ua, config, await sendCode(ua, step, totpCode(secret, 1), REDIRECT_URI), step.pending);
    const again = await passwordStep(ua, config, { email: app.email, password: app.password }, { extra: { max_age: '0' } });
    // This step's code is spent: a recovery code.
    const page = await ua.follow(`${server.issuer}/interaction/${again.uid}/two-step/recovery`);
    const claims = (await redeemAtApp(ua, config, await sendCode(ua, { url: page.url, html: await page.res.text() }, recoveryCodes[0]!, REDIRECT_URI, true), again.pending)).claims()!;
    expect(claims.acr).toBe(MFA_ACR);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('a person with no second factor: asked for one, they go on with the password acr; required (essential), the app gets unmet_authentication_requirements', async () => {
    const { config, ua } = await passwordSession();
    const asked = await authorize(ua, config, { consent: false, extra: { acr_values: MFA_ACR } });
    expect(((await redeemAtApp(ua, config, asked.last, asked)).claims()!).acr).toBe('urn:idp:acr:password');

    const required = await authorize(ua, config, { consent: false, extra: { claims: ESSENTIAL_MFA } });
    expect(required.callbackUrl.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(required.callbackUrl.searchParams.get('error')).toBe('unmet_authentication_requirements');
    expect(required.callbackUrl.searchParams.has('code')).toBe(false);

    // Signing in afresh does not help either.
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const fresh = await authorize(new UserAgent(), await discover(server.issuer, app.clientId, app.clientSecret), { login: { email: app.email, password: app.password }, consent: false, extra: { claims: ESSENTIAL_MFA } });
    expect(fresh.callbackUrl.searchParams.get('error')).toBe('unmet_authentication_requirements');
    expect(fresh.callbackUrl.searchParams.has('code')).toBe(false);
  });
});
