// Brute force and enumeration: ASVS V6.3.1 (2.2.1), V6.3.8; NIST SP 800-63B §5.2.2 (rate limiting).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idp } from '../helpers/cli.ts';
import { seed } from '../helpers/seed.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { startInstance, startServer, type TestServer } from '../helpers/server.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';

let server: TestServer;
let app: Awaited<ReturnType<typeof seed>>;
let config: Awaited<ReturnType<typeof discover>>;

beforeAll(async () => {
  // The database's store, whose table the cases read (Redis's: the last section), in every run.
  server = await startServer({ LOGIN_MAX_FAILURES: '3', LOGIN_IP_MAX_FAILURES: '1000', LOGIN_WAIT_INCREMENT_SECONDS: '60', LOGIN_MAX_WAIT_SECONDS: '900', EPHEMERAL_STORE: 'database' });
  app = await seed(server.env, { redirectUri: REDIRECT_URI });
  config = await discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server?.close());

/** One login attempt through the real form; returns the status and page of the answer. */
async function attempt(email: string, password: string, ua = new UserAgent()) {
  // prompt=login: the login form even for a browser that is still signed in.
  const started = await authorize(ua, config, { consent: false, prompt: 'login consent' });
  const html = await started.last.res.text();
  const res = await ua.submit(started.last.url, html, formAction(html, '/login'), { email, password }, REDIRECT_URI);
  return { status: res.res.status, retryAfter: res.res.headers.get('retry-after'), page: res.url.startsWith(REDIRECT_URI) ? '' : await res.res.text() };
}

/** Login forms opened one after the other, to be posted at once (each from its own browser). */
async function openForms(n: number, cfg = config) {
  const forms = [];
  for (let i = 0; i < n; i++) {
    const ua = new UserAgent();
    const started = await authorize(ua, cfg, { consent: false, prompt: 'login consent' });
    const html = await started.last.res.text();
    forms.push((email: string, password: string) => ua.submit(started.last.url, html, formAction(html, '/login'), { email, password }, REDIRECT_URI).then((r) => r.res.status));
  }
  return forms;
}

function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

const auditCount = (action: string, target?: string) => server.current.db.prisma.auditEvent.count({ where: { action, ...(target ? { target } : {}) } });
const accountKey = (email: string) => server.current.services.throttle.accountKey(email);

describe('login throttling', () => {
  it('SEC-BF-01 makes an account wait after repeated failures, even for the right password, and says so with 429', async () => {
    // The owner signs in once from their own browser first: a trusted device.
    const owner = new UserAgent();
    await loginAndExchange(owner, config, { login: app });
    expect(owner.cookies.has('idp_device')).toBe(true);

    for (let i = 0; i < 3; i++) expect((await attempt(app.email, 'guessing wrong')).status).toBe(401);
    const blocked = await attempt(app.email, app.password);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThan(0);
    expect(blocked.page).toContain('Too many failed sign-in attempts');
    expect(await auditCount('login.throttled', await accountKey(app.email))).toBe(1);

    // The owner's own browser is not locked out by someone else's guessing.
    const fromOwner = await attempt(app.email, app.password, owner);
    expect(fromOwner.status).toBe(200);
    expect(fromOwner.page).toContain('Allow access');

    // When the wait is over (aged in the database), the right password works from anywhere.
    await server.current.db.prisma.loginThrottle.updateMany({ where: { key: await accountKey(app.email) }, data: { lockedUntil: new Date(Date.now() - 1000) } });
    expect((await attempt(app.email, app.password)).page).toContain('Allow access');
  });

  it('SEC-BF-02 throttles unknown emails exactly like known ones (no enumeration)', async () => {
    const known = await seed(server.env, { redirectUri: REDIRECT_URI });
    const answers = [];
    for (const email of [known.email, 'nobody-here@example.com']) {
      for (let i = 0; i < 3; i++) await attempt(email, 'guessing wrong');
      const blocked = await attempt(email, 'guessing wrong');
      answers.push({ status: blocked.status, page: blocked.page.replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '').replace(email, 'EMAIL') });
    }
    expect(answers[0]!.status).toBe(429);
    expect(answers[1]).toEqual(answers[0]);
  });

  it('SEC-BF-05 an unknown email, a wrong password, a disabled account and a federated-only account get the same status and page; nobody is signed in', async () => {
    const prisma = server.current.db.prisma;
    const wrong = await seed(server.env, { redirectUri: REDIRECT_URI });
    const disabled = await seed(server.env, { redirectUri: REDIRECT_URI });
    expect((await idp(['users', 'disable', disabled.userId], server.env)).code).toBe(0);
    const federated = await prisma.user.create({ data: { id: `fed-${Date.now()}`, email: `federated-${Date.now()}@example.com`, emailVerified: true } });
    const cases = [
      ['nobody-at-all@example.com', 'some password 1'],
      [wrong.email, 'not the password'],
      [disabled.email, disabled.password],
      [federated.email, 'any password at all'],
    ] as const;
    const answers = [];
    for (const [email, password] of cases) {
      const ua = new UserAgent();
      const answer = await attempt(email, password, ua);
      answers.push({ status: answer.status, page: answer.page.replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '').replace(email, 'EMAIL') });
      expect(ua.cookies.has('_session')).toBe(false);
    }
    expect(answers[0]!.status).toBe(401);
    expect(answers[0]!.page).toContain('Incorrect email or password.');
    for (const answer of answers.slice(1)) expect(answer).toEqual(answers[0]);
  });

  it('SEC-BF-06 of 40 parallel wrong passwords for one account, exactly as many as the limit get their password checked; the rest wait (429)', async () => {
    const victim = await seed(server.env, { redirectUri: REDIRECT_URI });
    const forms = await openForms(40);
    const statuses = await Promise.all(forms.map((submit, i) => submit(victim.email, `wrong guess ${i}`)));
    expect(tally(statuses)).toEqual({ 401: 3, 429: 37 });
    const key = await accountKey(victim.email);
    const row = await server.current.db.prisma.loginThrottle.findUnique({ where: { key } });
    expect(row!.failures).toBe(3);
    expect(row!.lockedUntil!.getTime()).toBeGreaterThan(Date.now());
    // Every refusal is counted: those before the wait began are reported by its event, the others wait in the row.
    const [event] = await server.current.db.prisma.auditEvent.findMany({ where: { action: 'login.throttled', target: key } });
    expect(((JSON.parse(event!.details!) as { refused?: number }).refused ?? 0) + row!.refused).toBe(37);
  });

  it('SEC-BF-07 a waiting account records one audit event per wait, however many attempts it refuses; the refusals are counted', async () => {
    const victim = await seed(server.env, { redirectUri: REDIRECT_URI });
    const key = await accountKey(victim.email);
    for (let i = 0; i < 3; i++) expect((await attempt(victim.email, 'guessing wrong')).status).toBe(401);
    const forms = await openForms(20);
    expect(tally(await Promise.all(forms.map((submit) => submit(victim.email, 'still guessing'))))).toEqual({ 429: 20 });
    expect(await auditCount('login.throttled', key)).toBe(1);
    // When the wait is over, the next failure starts a longer wait: one more event, which says how many were refused.
    await server.current.db.prisma.loginThrottle.update({ where: { key }, data: { lockedUntil: new Date(Date.now() - 1000) } });
    expect((await attempt(victim.email, 'guessing wrong')).status).toBe(401);
    const events = await server.current.db.prisma.auditEvent.findMany({ where: { action: 'login.throttled', target: key }, orderBy: { at: 'asc' } });
    expect(events.map((e) => JSON.parse(e.details!) as Record<string, unknown>)).toEqual([
      { failures: 3, waitSeconds: 60 },
      { failures: 4, waitSeconds: 120, refused: 20 },
    ]);
  });

  it('SEC-BF-08 counts past the reset period are purged unless they still wait; nothing typed is kept as a key', async () => {
    const prisma = server.current.db.prisma;
    const stale = 'stale-typed-identifier@example.com';
    const waiting = 'waiting-typed-identifier@example.com';
    await attempt(stale, 'wrong');
    await attempt(waiting, 'wrong');
    const [staleKey, waitingKey] = [await accountKey(stale), await accountKey(waiting)];
    expect((await prisma.loginThrottle.findMany({ where: { key: { contains: 'typed-identifier' } } }))).toEqual([]);
    const longAgo = new Date(Date.now() - 13 * 3600 * 1000);
    await prisma.loginThrottle.update({ where: { key: staleKey }, data: { lastFailureAt: longAgo } });
    await prisma.loginThrottle.update({ where: { key: waitingKey }, data: { lastFailureAt: longAgo, lockedUntil: new Date(Date.now() + 60_000) } });
    const purged = await idp(['purge', '--json'], server.env);
    expect(purged.code).toBe(0);
    expect(purged.json<{ throttles: number }>().throttles).toBeGreaterThanOrEqual(1);
    expect(await prisma.loginThrottle.findUnique({ where: { key: staleKey } })).toBeNull();
    expect(await prisma.loginThrottle.findUnique({ where: { key: waitingKey } })).not.toBeNull();
    expect(await prisma.loginThrottle.findUnique({ where: { key: 'ip:127.0.0.1' } })).not.toBeNull();
  });

  it('SEC-BF-03 makes a client address wait after many failures across accounts', async () => {
    const strict = await startServer({ LOGIN_MAX_FAILURES: '1000', LOGIN_IP_MAX_FAILURES: '4' });
    try {
      const other = await seed(strict.env, { redirectUri: REDIRECT_URI });
      const otherConfig = await discover(strict.issuer, other.clientId, other.clientSecret);
      const tryOnce = async (email: string, password: string) => {
        const ua = new UserAgent();
        const started = await authorize(ua, otherConfig, { consent: false });
        const html = await started.last.res.text();
        return (await ua.submit(started.last.url, html, formAction(html, '/login'), { email, password }, REDIRECT_URI)).res.status;
      };
      for (let i = 0; i < 4; i++) expect(await tryOnce(`spray${i}@example.com`, 'password123')).toBe(401);
      expect(await tryOnce(other.email, other.password)).toBe(429);
      expect(await strict.current.db.prisma.auditEvent.count({ where: { action: 'login.throttled', target: 'ip:127.0.0.1' } })).toBeGreaterThanOrEqual(1);
    } finally {
      await strict.close();
    }
  });
});

describe.runIf(Boolean(process.env.TEST_REDIS_URL))('login throttling with REDIS_URL', () => {
  it('SEC-BF-04 keeps the counts in Redis, shared by every instance', async () => {
    const prefix = `idp-test-${randomBytes(4).toString('hex')}:`;
    const a = await startServer({ REDIS_URL: process.env.TEST_REDIS_URL!, REDIS_PREFIX: prefix, LOGIN_MAX_FAILURES: '2', LOGIN_IP_MAX_FAILURES: '1000' });
    const b = await startInstance(a.env);
    const redis = new Redis(process.env.TEST_REDIS_URL!);
    try {
      const user = await seed(a.env, { redirectUri: REDIRECT_URI });
      const cfg = await discover(a.issuer, user.clientId, user.clientSecret);
      const tryAt = async (origin: string, password: string) => {
        const ua = new UserAgent();
        const started = await authorize(ua, cfg, { consent: false });
        const html = await started.last.res.text();
        const action = new URL(formAction(html, '/login'), started.last.url);
        action.host = new URL(origin).host;
        // The form is posted to either instance, from the page (whose origin is the issuer).
        return (await ua.submit(started.last.url, html, action.href, { email: user.email, password }, REDIRECT_URI)).res.status;
      };
      expect(await tryAt(a.issuer, 'wrong one')).toBe(401);
      expect(await tryAt(b.url, 'wrong two')).toBe(401);
      // Locked on both instances, from counts kept in Redis (not in the database).
      expect(await tryAt(a.issuer, user.password)).toBe(429);
      expect(await tryAt(b.url, user.password)).toBe(429);
      const key = `${prefix}throttle:${await a.current.services.throttle.accountKey(user.email)}`;
      expect(await redis.hget(key, 'failures')).toBe('2');
      expect(await a.current.db.prisma.loginThrottle.count()).toBe(0);
      await redis.hset(key, 'lockedUntil', String(Date.now() - 1000));
      expect(await tryAt(b.url, user.password)).toBe(200);

      // SEC-BF-06 on Redis: of parallel guesses, exactly the limit get their password checked.
      const victim = await seed(a.env, { redirectUri: REDIRECT_URI });
      const forms = await openForms(20, cfg);
      expect(tally(await Promise.all(forms.map((submit, i) => submit(victim.email, `wrong ${i}`))))).toEqual({ 401: 2, 429: 18 });
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await b.close();
      await a.close();
    }
  });
});
