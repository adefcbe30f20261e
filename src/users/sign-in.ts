import type { AuditService } from '../audit/service.ts';
import type { User } from '../db/index.ts';
import type { UserService } from './service.ts';
import type { LoginThrottle } from './throttle.ts';

export type PasswordSignIn = { kind: 'signed_in'; user: User } | { kind: 'wrong' } | { kind: 'throttled'; wait: number };

/**
 * The rules of signing in with a password, whatever page asks: every attempt is throttled per
 * client address and per account (counted before the password is checked), a browser that
 * signed in to the account before is exempt from the account's wait, and the outcome is audited
 * without keeping what was typed.
 */
export function createSignIn(deps: { users: UserService; throttle: LoginThrottle; audit: AuditService }) {
  const { users, throttle, audit } = deps;

  /**
   * Any proof of an account by password from `ip` (the login form, linking an upstream account):
   * `check` runs only when neither the address nor the account (unless `trusted`) must wait.
   */
  async function throttled<T>(input: { ip: string; email: string | null; trusted?: boolean }, check: () => Promise<{ ok: boolean; value: T }>): Promise<{ kind: 'throttled'; wait: number } | { kind: 'checked'; value: T }> {
    const account = input.email !== null && !input.trusted ? await throttle.accountKey(input.email) : undefined;
    return counted(input.ip, account, check);
  }

  /**
   * A second factor's code for `userId`, after the password: throttled per client address and
   * per account, under a key of its own, so that the password's success (which clears the
   * account's count) does not clear the codes' failures; only a right code does. No device is
   * trusted here.
   */
  function secondFactor<T>(input: { ip: string; userId: string }, check: () => Promise<{ ok: boolean; value: T }>) {
    return counted(input.ip, `second-factor:${input.userId}`, check);
  }

  async function counted<T>(ip: string, account: string | undefined, check: () => Promise<{ ok: boolean; value: T }>): Promise<{ kind: 'throttled'; wait: number } | { kind: 'checked'; value: T }> {
    const attempt = await throttle.begin({ ip, ...(account ? { account } : {}) }, { actor: 'anonymous', ip });
    if (!('finish' in attempt)) return { kind: 'throttled', wait: attempt.wait };
    let result: { ok: boolean; value: T };
    try {
      result = await check();
    } catch (err) {
      await attempt.finish(false);
      throw err;
    }
    await attempt.finish(result.ok);
    return { kind: 'checked', value: result.value };
  }

  /**
   * The login form. `deviceKey`: what this browser keeps of the account it signed in to before
   * (its signed device cookie, see users.deviceKey), so that an attacker's failures cannot lock
   * the owner out of their own devices; a new password makes the key stale.
   */
  async function withPassword(input: { email: string; password: string; ip: string; deviceKey: string | null; clientId: string }): Promise<PasswordSignIn> {
    const { email, ip, clientId } = input;
    // The account the email names: read at most once per attempt (the device check, the audit).
    let account: ReturnType<typeof users.accountForEmail> | undefined;
    const accountForEmail = () => {
      account ??= users.accountForEmail(email);
      return account;
    };
    const idForEmail = async () => (await accountForEmail())?.id ?? null;
    const trusted = input.deviceKey !== null && input.deviceKey === (await accountForEmail())?.deviceKey;
    const outcome = await throttled({ ip, email, trusted }, async () => {
      const user = await users.authenticate(email, input.password);
      return { ok: user !== null, value: user };
    });
    if (outcome.kind === 'throttled') return outcome;
    const user = outcome.value;
    if (!user) {
      // What was typed into the email field is never recorded: it may be a password. An unknown
      // identifier is recorded as a keyed hash, so that repeated attempts can still be correlated.
      const knownId = await idForEmail();
      await audit.record({ actor: 'anonymous', ip }, 'login.failed', knownId, { clientId, ...(knownId ? {} : { identifier: await throttle.accountKey(email) }) });
      return { kind: 'wrong' };
    }
    await audit.record({ actor: `user:${user.id}`, ip }, 'login.succeeded', user.id, { clientId });
    return { kind: 'signed_in', user };
  }

  /**
   * A passkey as the whole sign-in, no password: throttled per client address (the account is
   * known only from the browser's answer), audited like a password sign-in. `verify` checks the
   * answer; a disabled account's passkey fails like one that does not verify.
   */
  async function withPasskey(input: { ip: string; clientId: string }, verify: () => Promise<{ userId: string; amr: string[] } | null>): Promise<{ kind: 'signed_in'; userId: string; amr: string[] } | { kind: 'wrong' } | { kind: 'throttled'; wait: number }> {
    const { ip, clientId } = input;
    const outcome = await counted(ip, undefined, async () => {
      const proof = await verify();
      const ok = proof !== null && (await users.findActive(proof.userId)) !== null;
      return { ok, value: { proof, ok } };
    });
    if (outcome.kind === 'throttled') return outcome;
    const { proof, ok } = outcome.value;
    if (!proof || !ok) {
      await audit.record({ actor: 'anonymous', ip }, 'login.failed', proof?.userId ?? null, { clientId, method: 'passkey' });
      return { kind: 'wrong' };
    }
    await audit.record({ actor: `user:${proof.userId}`, ip }, 'login.succeeded', proof.userId, { clientId, method: 'passkey' });
    return { kind: 'signed_in', ...proof };
  }

  return { throttled, secondFactor, withPassword, withPasskey };
}

export type SignIn = ReturnType<typeof createSignIn>;
