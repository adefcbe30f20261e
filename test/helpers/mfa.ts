import { Secret, TOTP } from 'otpauth';
import { expect } from 'vitest';
import { authorize, type AuthorizeOptions } from './flow.ts';
import { withServices } from './seed.ts';
import { formAction, type UserAgent } from './user-agent.ts';

/** The code an authenticator app shows for `secret` (spaces allowed), `steps` 30-second steps from now. */
export function totpCode(secret: string, steps = 0): string {
  const totp = new TOTP({ secret: Secret.fromBase32(secret.replace(/\s/g, '')), algorithm: 'SHA1', digits: 6, period: 30 });
  return totp.generate({ timestamp: Date.now() + steps * 30_000 });
}

/**
 * Gives a user a confirmed authenticator app through the services, as the account page would
 * (the page itself is tested in test/second-factor.test.ts and test/second-factor-browser.test.ts). Its
 * first code is this step's, so a sign-in needs the next step's code (`totpCode(secret, 1)`).
 */
export async function addAuthenticator(env: Record<string, string>, user: { userId: string; email: string }) {
  return withServices(env, async ({ mfa }) => {
    const enrolment = await mfa.start(user.userId, user.email);
    const confirmed = await mfa.confirm({ actor: `user:${user.userId}`, ip: '127.0.0.1' }, user.userId, { factorId: enrolment.factorId, name: 'Phone', code: totpCode(enrolment.secret) });
    if (confirmed.kind !== 'confirmed' || !confirmed.recoveryCodes) throw new Error('the authenticator app was not confirmed');
    return { secret: enrolment.secret, recoveryCodes: confirmed.recoveryCodes };
  });
}

/** A sign-in through the real pages up to its second step: the code page, and where it is. */
export async function passwordStep(ua: UserAgent, config: Parameters<typeof authorize>[1], login: { email: string; password: string }, opts: AuthorizeOptions = {}) {
  const pending = await authorize(ua, config, { ...opts, login, consent: false });
  expect(pending.last.res.status).toBe(200);
  const html = await pending.last.res.text();
  expect(html).toContain('Two-step verification');
  return { pending, url: pending.last.url, html, uid: new URL(pending.last.url).pathname.split('/')[2]! };
}

/** Sends a code (or, `recovery`, a recovery code) from the second step's page; the answer, redirects followed up to `stopAt`. */
export function sendCode(ua: UserAgent, step: { url: string; html: string }, code: string, stopAt: string, recovery = false) {
  return ua.submit(step.url, step.html, formAction(step.html, recovery ? '/two-step/recovery' : '/two-step'), { code }, stopAt);
}
