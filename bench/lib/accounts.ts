/**
 * Requests measured on ours only (no ceiling: they are ours, not the protocol's): a
 * forgot-password request, a sign-up through an app, and the list calls of the admin console.
 */
import { Secret, TOTP } from 'otpauth';
import { FORM, fullLogin, type AuthorizeOptions, type RequestHook, type Target } from './agent.ts';
import { clientAddresses, forgotPasswordForm, signUpThroughApp } from './mail.ts';
import { runCli } from './proc.ts';
import { tracingHook, type SignInStep } from './signin.ts';

export const OURS_ONLY_SCENARIOS = ['totp_login', 'passkey_login', 'password_reset_request', 'signup', 'console_lists'] as const;
export type OursOnlyScenario = (typeof OURS_ONLY_SCENARIOS)[number];

/** What the server for these scenarios is started with (on top of the benchmark's environment). */
export const OURS_ONLY_ENV: Record<string, string> = {
  SIGNUP: 'open',
  SIGNUP_IP_MAX_PER_HOUR: '1000000',
  // Every request comes from a client address of its own (X-Forwarded-For): the per-IP limits are what one client meets.
  TRUST_PROXY: '1',
};

/** The list calls the console's screens make when opened (their page sizes). */
const CONSOLE_LISTS = ['/admin/v1/users?limit=20', '/admin/v1/clients?limit=50', '/admin/v1/resources?limit=50', '/admin/v1/roles?limit=50', '/admin/v1/audit?limit=25'];

/** An address gets at most this many reset links per window: each seeded account is used this many times at most. */
const LINKS_PER_ADDRESS = 3;

/**
 * Forgot-password requests: `forms` browsers at the form of a sign-in, each request for the next
 * of `accounts` seeded accounts (`<prefix><n>@bench.example`), from a client address of its own.
 */
export async function forgotPasswordOp(target: Target, forms: number, accounts: number, prefix: string): Promise<() => Promise<void>> {
  const send = await Promise.all(Array.from({ length: forms }, () => forgotPasswordForm(target)));
  const nextIp = clientAddresses();
  let n = 0;
  return async () => {
    const i = n++;
    if (i >= accounts * LINKS_PER_ADDRESS) throw new Error('every seeded account was sent its links: seed more');
    await send[i % send.length]!(`${prefix}${(i % accounts) + 1}@bench.example`, nextIp());
  };
}

/** Sign-ups of new browsers through the app's prompt=create, each ending on the "check your email" page. */
export function signUpOp(target: Target, prefix: string): () => Promise<void> {
  const nextIp = clientAddresses();
  let n = 0;
  return () => signUpThroughApp(target, `${prefix}${++n}@bench.example`, nextIp());
}

/**
 * An admin client created with the CLI, as an operator bootstraps one, and its client_credentials
 * token (`admin:read`, what the console's lists need).
 */
export async function adminToken(target: Target, env: Record<string, string>, cwd: string): Promise<string> {
  const created = await runCli(['clients', 'create', '--name', 'Bench ops', '--admin', '--json'], env, cwd);
  if (created.code !== 0) throw new Error(`${target.name}: clients create --admin failed: ${created.stderr}`);
  const { client, clientSecret } = JSON.parse(created.stdout) as { client: { clientId: string }; clientSecret: string };
  const res = await fetch(`${target.url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`, 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin:read' }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${target.name}: admin token: ${res.status} ${text.slice(0, 200)}`);
  return (JSON.parse(text) as { access_token: string }).access_token;
}

/** One console list call per op, the lists in turn. */
export function consoleListOp(target: Target, token: string): () => Promise<void> {
  let n = 0;
  return async () => {
    const path = CONSOLE_LISTS[n++ % CONSOLE_LISTS.length]!;
    const res = await fetch(`${target.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${target.name}: GET ${path} answered ${res.status}: ${text.slice(0, 200)}`);
  };
}

/** Each console list call once, alone, with its statements (from /metrics before and after). */
export async function traceConsoleLists(target: Target, token: string, metricsToken: string): Promise<SignInStep[]> {
  const steps: SignInStep[] = [];
  const hook = tracingHook(target, metricsToken, steps, (method, url) => `${method} ${new URL(url).pathname}${new URL(url).search}`);
  for (const path of CONSOLE_LISTS) {
    const url = `${target.url}${path}`;
    const res = await hook('GET', url, () => fetch(url, { headers: { authorization: `Bearer ${token}` } }));
    await res.arrayBuffer();
  }
  return steps;
}

// ---- sign-in with a second factor (an authenticator app)

const PERIOD = 30;
const stepNow = () => Math.floor(Date.now() / 1000 / PERIOD);
const codeAt = (secret: string, step: number) => new TOTP({ secret: Secret.fromBase32(secret.replace(/\s/g, '')), algorithm: 'SHA1', digits: 6, period: PERIOD }).generate({ timestamp: step * PERIOD * 1000 + 1000 });

export interface TotpUser {
  email: string;
  secret: string;
  /** The last time step a code of this user was sent for: the server refuses that step and earlier ones. */
  lastStep: number;
}

/**
 * Gives each user a confirmed authenticator app, as the account page does (through the
 * services, on the server's database, in this process): a new secret, confirmed with this
 * step's code.
 */
export async function enrolTotp(env: Record<string, string>, users: { id: string; email: string }[]): Promise<TotpUser[]> {
  const { withServices } = await import('../../test/helpers/seed.ts');
  return withServices(env, async ({ mfa }) => {
    const enrolled: TotpUser[] = [];
    for (const user of users) {
      const enrolment = await mfa.start(user.id, user.email);
      const step = stepNow();
      const confirmed = await mfa.confirm({ actor: 'system:bench', ip: '127.0.0.1' }, user.id, { factorId: enrolment.factorId, name: 'Bench phone', code: codeAt(enrolment.secret, step) });
      if (confirmed.kind !== 'confirmed') throw new Error(`${user.email}: the authenticator app was not confirmed`);
      enrolled.push({ email: user.email, secret: enrolment.secret, lastStep: step });
    }
    return enrolled;
  });
}

/**
 * A whole sign-in with the second step (authorize → login page → password → code page → code →
 * consent page → allow → token), each time as the next user who still has an unused code: a
 * code is accepted once per 30-second step and user, and only for the current step or the next,
 * so each user signs in about once per 30 seconds.
 */
export function totpSignInOp(target: Target, users: TotpUser[], password: string, request: AuthorizeOptions): (hook?: RequestHook) => Promise<void> {
  let next = 0;
  return async (hook) => {
    const now = stepNow();
    for (let tried = 0; tried < users.length; tried++) {
      const user = users[next++ % users.length]!;
      const step = Math.max(user.lastStep + 1, now);
      if (step > now + 1) continue;
      user.lastStep = step;
      const code = codeAt(user.secret, step);
      const { tokens } = await fullLogin({ ...target, user: { email: user.email, password } }, { ...request, secondFactor: () => code }, hook);
      if (!tokens.id_token) throw new Error(`${target.name}: no ID token after the second step`);
      return;
    }
    throw new Error(`${target.name}: every TOTP user has used its codes for this step: raise BENCH_TOTP_USERS`);
  };
}

// ---- sign-in with a passkey alone

/**
 * Gives each user a passkey held by a software authenticator (a P-256 key, "none" attestation:
 * the tests' own), through the services as the account page adds one; returns the sign-in
 * (the login page's "Sign in with a passkey" instead of the password, then consent and token),
 * each time with the next user's authenticator. The authenticators do not count signatures
 * (as synced passkeys), so a user may sign in again at once.
 */
export async function passkeySignInOp(target: Target, env: Record<string, string>, users: { id: string; email: string }[], request: AuthorizeOptions): Promise<(hook?: RequestHook) => Promise<void>> {
  const [{ withServices }, { SoftAuthenticator, passkeyOptions }] = await Promise.all([import('../../test/helpers/seed.ts'), import('../../test/helpers/passkeys.ts')]);
  const origin = new URL(target.url).origin;
  const authenticators = await withServices(env, async ({ mfa }) =>
    Promise.all(
      users.map(async (user) => {
        const authenticator = new SoftAuthenticator(origin);
        const options = await mfa.passkeyCreation({ id: user.id, email: user.email, name: null });
        const added = await mfa.addPasskey({ actor: 'system:bench', ip: '127.0.0.1' }, user.id, { name: 'Bench passkey', response: JSON.stringify(authenticator.register(options)) });
        if (added.kind !== 'added') throw new Error(`${user.email}: the passkey was not added`);
        return authenticator;
      }),
    ),
  );
  let next = 0;
  return async (hook) => {
    const authenticator = authenticators[next++ % authenticators.length]!;
    const passkey = (html: string) => JSON.stringify(authenticator.authenticate(passkeyOptions(html, '/passkey')));
    const { tokens } = await fullLogin(target, { ...request, passkey }, hook);
    if (!tokens.id_token) throw new Error(`${target.name}: no ID token after the passkey sign-in`);
  };
}
