// The second factor (TOTP authenticator apps, recovery codes): RFC 6238 §5.2 (one use per code,
// a bounded validation window), RFC 8176 (amr), ASVS V6.5.x (one-time secrets, replay,
// single-use recovery codes), NIST SP 800-63B §5.1.4.2 (OTP rate limiting) and §5.2.2; step-up:
// OpenID Connect Core §3.1.2.1 (acr_values, max_age), §5.5.1.1 (essential acr), §3.1.2.6.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, discover, REDIRECT_URI } from '../helpers/flow.ts';
import { addAuthenticator, passwordStep, sendCode, totpCode } from '../helpers/mfa.ts';
import { seed, withServices } from '../helpers/seed.ts';
import { startServer } from '../helpers/server.ts';
import { csrfToken, formAction, UserAgent } from '../helpers/user-agent.ts';
import type { SecurityContext } from './setup.ts';

const ctx = {} as SecurityContext;
beforeAll(async () => {
  ctx.server = await startServer({ LOGIN_MAX_FAILURES: '3', LOGIN_IP_MAX_FAILURES: '1000', LOGIN_WAIT_INCREMENT_SECONDS: '60', LOGIN_MAX_WAIT_SECONDS: '900' });
  ctx.app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
  ctx.config = await discover(ctx.server.issuer, ctx.app.clientId, ctx.app.clientSecret);
});
afterAll(() => ctx.server?.close());

/** A person with an authenticator app, and an app they sign in to. */
async function person() {
  const app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(ctx.server.issuer, app.clientId, app.clientSecret);
  return { app, config, login: { email: app.email, password: app.password }, ...(await addAuthenticator(ctx.server.env, app)) };
}

/** Whether a browser is signed in at the provider: an authorization request with prompt=none gets a code rather than login_required. */
async function signedIn(ua: UserAgent, config: Parameters<typeof authorize>[1]) {
  const { callbackUrl } = await authorize(ua, config, { prompt: 'none', consent: false });
  return callbackUrl.href.startsWith(REDIRECT_URI) && callbackUrl.searchParams.get('error') !== 'login_required';
}

const post = (ua: UserAgent, url: string, html: string) =>
  ua.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer }, body: new URLSearchParams({ _csrf: csrfToken(html) }) });

describe('a sign-in waiting for its second factor', () => {
  it('SEC-MF-01 going straight to the consent form or back to the provider after the password, before the code, finishes nothing', async () => {
    const { config, login } = await person();
    const ua = new UserAgent();
    const step = await passwordStep(ua, config, login);
    const confirm = await post(ua, `${ctx.server.issuer}/interaction/${step.uid}/confirm`, step.html);
    expect(confirm.status).toBe(403);
    const resumed = await ua.follow(`${ctx.server.issuer}/auth/${step.uid}`, REDIRECT_URI);
    expect(resumed.url.startsWith(REDIRECT_URI) && new URL(resumed.url).searchParams.has('code')).toBe(false);
    expect(await signedIn(ua, config)).toBe(false);
  });

  it("SEC-MF-02 the half-finished sign-in's cookies in another browser get no code and no session", async () => {
    const { config, login } = await person();
    const ua = new UserAgent();
    const step = await passwordStep(ua, config, login);
    const other = new UserAgent();
    for (const [name, value] of ua.cookies) if (name.startsWith('_interaction')) other.cookies.set(name, value);
    const page = await other.follow(`${ctx.server.issuer}/interaction/${step.uid}`);
    const html = await page.res.text();
    expect(html).toContain('Two-step verification');
    expect(html).not.toContain('Allow access');
    const resumed = await other.follow(`${ctx.server.issuer}/auth/${step.uid}`, REDIRECT_URI);
    expect(resumed.url.startsWith(REDIRECT_URI) && new URL(resumed.url).searchParams.has('code')).toBe(false);
    expect(await signedIn(other, config)).toBe(false);
  });

  it('SEC-MF-03 a code is accepted once: the same code again, or an older one, is refused', async () => {
    const { config, login, secret } = await person();
    const code = totpCode(secret, 1);
    const first = new UserAgent();
    const step = await passwordStep(first, config, login);
    expect((await sendCode(first, step, code, REDIRECT_URI)).url.startsWith(ctx.server.issuer)).toBe(true);
    expect(await signedIn(first, config)).toBe(true);
    for (const replay of [code, totpCode(secret, 0), totpCode(secret, -2)]) {
      const ua = new UserAgent();
      const again = await passwordStep(ua, config, login);
      const answer = await sendCode(ua, again, replay, REDIRECT_URI);
      expect(answer.res.status).toBe(401);
      expect(await signedIn(ua, config)).toBe(false);
    }
  });

  it('SEC-MF-04 wrong codes are throttled per account like passwords, a new password sign-in does not reset the count, and the right code waits too', async () => {
    const { config, login, secret } = await person();
    const ua = new UserAgent();
    let step = await passwordStep(ua, config, login);
    for (let i = 0; i < 3; i++) {
      const answer = await sendCode(ua, step, i === 2 ? '000000' : String(100000 + i), REDIRECT_URI);
      expect(answer.res.status).toBe(401);
      step = { ...step, html: await answer.res.text() };
    }
    const waiting = await sendCode(ua, step, totpCode(secret, 1), REDIRECT_URI);
    expect(waiting.res.status).toBe(429);
    expect(Number(waiting.res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await waiting.res.text()).toContain('Too many failed sign-in attempts');
    // The password is right, and proving it again clears nothing of the codes' count.
    const fresh = new UserAgent();
    const again = await passwordStep(fresh, config, login);
    expect((await sendCode(fresh, again, totpCode(secret, 1), REDIRECT_URI)).res.status).toBe(429);
    expect(await signedIn(fresh, config)).toBe(false);
  });

  it('SEC-MF-05 a recovery code signs in once: the second use is refused', async () => {
    const { config, login, recoveryCodes } = await person();
    const use = async () => {
      const ua = new UserAgent();
      const step = await passwordStep(ua, config, login);
      const page = await ua.follow(`${ctx.server.issuer}/interaction/${step.uid}/two-step/recovery`);
      const answer = await sendCode(ua, { url: page.url, html: await page.res.text() }, recoveryCodes[0]!, REDIRECT_URI, true);
      return { status: answer.res.status, signedIn: await signedIn(ua, config) };
    };
    expect(await use()).toEqual({ status: 200, signedIn: true });
    expect(await use()).toEqual({ status: 401, signedIn: false });
  });

  it('SEC-MF-06 the second factor is kept encrypted, the recovery codes hashed, and neither appears in the audit trail', async () => {
    const { app, secret, recoveryCodes } = await person();
    const prisma = ctx.server.current.db.prisma;
    const factor = await prisma.mfaFactor.findFirstOrThrow({ where: { userId: app.userId } });
    expect(factor.secretEnc).toMatch(/^v1\./);
    expect(factor.secretEnc).not.toContain(secret);
    const hashes = (await prisma.recoveryCode.findMany({ where: { userId: app.userId } })).map((r) => r.codeHash).join(' ');
    const audit = JSON.stringify(await prisma.auditEvent.findMany({ where: { target: app.userId } }));
    for (const code of recoveryCodes) {
      expect(hashes).not.toContain(code);
      expect(audit).not.toContain(code);
    }
    expect(audit).not.toContain(secret);
  });
});

const MFA_ACR = 'urn:idp:acr:mfa';
const ESSENTIAL_MFA = JSON.stringify({ id_token: { acr: { essential: true, value: MFA_ACR } } });

/** A browser signed in with the password alone, then (optionally) the person adds an authenticator app. */
async function passwordSession(withFactor: boolean) {
  const app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(ctx.server.issuer, app.clientId, app.clientSecret);
  const ua = new UserAgent();
  const first = await authorize(ua, config, { login: { email: app.email, password: app.password } });
  expect(first.callbackUrl.searchParams.has('code')).toBe(true);
  return { app, config, ua, ...(withFactor ? await addAuthenticator(ctx.server.env, app) : {}) };
}

/** An authorization request on that browser: whether the app got a code, and where the browser ended. */
async function asks(ua: UserAgent, config: Parameters<typeof authorize>[1], extra: Record<string, string>, prompt?: string) {
  const { callbackUrl, last } = await authorize(ua, config, { consent: false, extra, ...(prompt ? { prompt } : {}) });
  return { code: callbackUrl.href.startsWith(REDIRECT_URI) && callbackUrl.searchParams.has('code'), error: callbackUrl.searchParams.get('error'), last };
}

describe('step-up to the second factor', () => {
  it('SEC-MF-07 a password-only session asked for the second factor cannot skip it: the consent form, the resume address and prompt=none give no code', async () => {
    const { config, ua } = await passwordSession(true);
    for (const extra of [{ acr_values: MFA_ACR }, { claims: ESSENTIAL_MFA }] as Record<string, string>[]) {
      const pending = await asks(ua, config, extra);
      expect(pending.code).toBe(false);
      const html = await pending.last.res.text();
      expect(html).toContain('Two-step verification');
      expect(html).not.toContain('name="password"');
      const uid = new URL(pending.last.url).pathname.split('/')[2]!;
      expect((await post(ua, `${ctx.server.issuer}/interaction/${uid}/confirm`, html)).status).toBe(403);
      const resumed = await ua.follow(`${ctx.server.issuer}/auth/${uid}`, REDIRECT_URI);
      expect(resumed.url.startsWith(REDIRECT_URI) && new URL(resumed.url).searchParams.has('code')).toBe(false);
      const silent = await asks(ua, config, extra, 'none');
      expect(silent.code).toBe(false);
      expect(silent.error).toBe('login_required');
    }
  });

  it('SEC-MF-08 an essential mfa acr is never met by a password-only session: a person without a second factor gets unmet_authentication_requirements, and no other claim may be asked for', async () => {
    const { config, ua } = await passwordSession(false);
    const required = await asks(ua, config, { claims: ESSENTIAL_MFA });
    expect(required).toMatchObject({ code: false, error: 'unmet_authentication_requirements' });
    expect(await asks(ua, config, { claims: ESSENTIAL_MFA }, 'none')).toMatchObject({ code: false, error: 'login_required' });
    const values = JSON.stringify({ id_token: { acr: { essential: true, values: [MFA_ACR] } } });
    expect(await asks(ua, config, { claims: values })).toMatchObject({ code: false, error: 'unmet_authentication_requirements' });
    const email = JSON.stringify({ id_token: { acr: { essential: true, value: MFA_ACR }, email: { essential: true } } });
    expect(await asks(ua, config, { claims: email })).toMatchObject({ code: false, error: 'invalid_request' });
  });
});

describe('policies and remembered browsers', () => {
  it('SEC-MF-09 a sign-in that must add a second factor gives the app no code before one is added: not by the continue form, the consent form or the resume address', async () => {
    const app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    await withServices(ctx.server.env, ({ clients }) => clients.update(app.clientId, { requireMfa: true }, { actor: 'cli' }));
    const config = await discover(ctx.server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const pending = await authorize(ua, config, { login: { email: app.email, password: app.password }, consent: false });
    const html = await pending.last.res.text();
    expect(html).toContain('Set up two-step verification');
    const uid = new URL(pending.last.url).pathname.split('/')[2]!;
    for (const path of ['two-step/setup/continue', 'confirm']) expect([303, 403]).toContain((await post(ua, `${ctx.server.issuer}/interaction/${uid}/${path}`, html)).status);
    // A code page of a factor the person does not have leads back to the setup page.
    const codePost = await ua.submit(pending.last.url, html, `/interaction/${uid}/two-step`, { code: '123456' });
    expect(codePost.url.startsWith(REDIRECT_URI)).toBe(false);
    const resumed = await ua.follow(`${ctx.server.issuer}/auth/${uid}`, REDIRECT_URI);
    expect(resumed.url.startsWith(REDIRECT_URI) && new URL(resumed.url).searchParams.has('code')).toBe(false);
    expect(await signedIn(ua, config)).toBe(false);
    expect(await ctx.server.current.db.prisma.mfaFactor.count({ where: { userId: app.userId, confirmedAt: { not: null } } })).toBe(0);
  });

  it('SEC-MF-10 a remembered browser skips the code only for the person who gave it there, until their password or second factors change; a forged cookie is ignored', async () => {
    const server = await startServer({ MFA_REMEMBER_DAYS: '30' });
    try {
      const app = await seed(server.env, { redirectUri: REDIRECT_URI });
      const config = await discover(server.issuer, app.clientId, app.clientSecret);
      const login = { email: app.email, password: app.password };
      const { secret } = await addAuthenticator(server.env, app);
      const ua = new UserAgent();
      const step = await passwordStep(ua, config, login);
      expect(step.html).toContain('Don’t ask again on this browser for 30 days');
      await ua.submit(step.url, step.html, formAction(step.html, '/two-step'), { code: totpCode(secret, 1), remember: 'yes' }, REDIRECT_URI);
      const cookie = ua.setCookieLines.find((l) => l.startsWith('idp_mfa='))!;
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Lax/i);
      expect(cookie).toMatch(/Max-Age=2592000/);

      /** A new sign-in with the password (prompt=login): past it without a code, or asked for one. */
      const again = async (who = login, agent = ua) => {
        const pending = await authorize(agent, config, { login: who, consent: false, prompt: 'login' });
        if (pending.callbackUrl.href.startsWith(REDIRECT_URI)) return 'skipped';
        const html = await pending.last.res.text();
        // On to the consent page (the test app asks for it): past the sign-in.
        return html.includes('Allow access') ? 'skipped' : html.includes('6-digit code') ? 'asked' : 'other';
      };
      expect(await again()).toBe('skipped');
      expect(await server.current.db.prisma.auditEvent.count({ where: { target: app.userId, action: 'mfa.browser_remembered' } })).toBe(1);

      // Copied into another account's sign-in, or altered: asked.
      const other = await seed(server.env, { redirectUri: REDIRECT_URI });
      await addAuthenticator(server.env, other);
      const otherConfig = await discover(server.issuer, other.clientId, other.clientSecret);
      const otherUa = new UserAgent();
      otherUa.cookies.set('idp_mfa', ua.cookies.get('idp_mfa')!);
      const otherPending = await authorize(otherUa, otherConfig, { login: { email: other.email, password: other.password }, consent: false });
      expect(await otherPending.last.res.text()).toContain('6-digit code');
      const forged = new UserAgent();
      forged.cookies.set('idp_mfa', ua.cookies.get('idp_mfa')!.replace(/^[^.]+/, (id) => id.split('').reverse().join('')));
      expect(await again(login, forged)).toBe('asked');

      // A change of second factors (another app added), or a new password: asked again.
      const second = await withServices(server.env, async ({ mfa }) => {
        const enrolment = await mfa.start(app.userId, app.email);
        await mfa.confirm({ actor: 'cli' }, app.userId, { factorId: enrolment.factorId, name: 'Tablet', code: totpCode(enrolment.secret) });
        return enrolment.secret;
      });
      expect(await again()).toBe('asked');
      const fresh = new UserAgent();
      const step2 = await passwordStep(fresh, config, login);
      await fresh.submit(step2.url, step2.html, formAction(step2.html, '/two-step'), { code: totpCode(second, 1), remember: 'yes' }, REDIRECT_URI);
      expect(await again(login, fresh)).toBe('skipped');
      await withServices(server.env, ({ users }) => users.setPassword(app.userId, 'another long enough password', { actor: 'cli' }));
      expect(await again({ email: app.email, password: 'another long enough password' }, fresh)).toBe('asked');
    } finally {
      await server.close();
    }
  });
});
