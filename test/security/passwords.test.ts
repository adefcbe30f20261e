// Password storage and policy: ASVS V6.2 (2.1), V11.4.2 (2.4.1); NIST SP 800-63B §5.1.1.2.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idp } from '../helpers/cli.ts';
import { seed } from '../helpers/seed.ts';
import { discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { startInstance, startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());

describe('password hashing policy', () => {
  it('SEC-PW-01 re-hashes a password at the next login when the configured argon2id cost has changed', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const hash = async () => (await server.current.db.prisma.user.findUniqueOrThrow({ where: { id: app.userId } })).passwordHash!;
    expect(await hash()).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);

    // The same database served with a higher cost (as after an upgrade), under its own issuer.
    const { ISSUER: _sameIssuer, ...env } = server.env;
    const stronger = await startInstance({ ...env, PASSWORD_HASH_MEMORY_KIB: '24576', PASSWORD_HASH_ITERATIONS: '3' });
    try {
      const config = await discover(stronger.url.replace('127.0.0.1', 'localhost'), app.clientId, app.clientSecret);
      const { tokens } = await loginAndExchange(new UserAgent(), config, { login: app });
      expect(tokens.claims()!.sub).toBe(app.userId);
      expect(await hash()).toMatch(/^\$argon2id\$v=19\$m=24576,p=1,t=3\$/);
      // The upgraded hash still verifies, and only the right password.
      await expect(loginAndExchange(new UserAgent(), config, { login: app })).resolves.toBeDefined();
      await expect(loginAndExchange(new UserAgent(), config, { login: { email: app.email, password: 'wrong password' } })).rejects.toThrow();
    } finally {
      await stronger.close();
    }
  });

  it('SEC-PW-02 enforces a configured minimum length and refuses a cost below the OWASP baseline', async () => {
    const short = await idp(['users', 'create', '--email', 'len@example.com', '--password', 'ten chars!'], { ...server.env, PASSWORD_MIN_LENGTH: '12' });
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('password: must be at least 12 characters');
    const weak = await idp(['migrate'], { ...server.env, PASSWORD_HASH_MEMORY_KIB: '1024' });
    expect(weak.code).toBe(1);
    expect(weak.stderr).toContain('PASSWORD_HASH_MEMORY_KIB: must be at least 19456');
  });

  it('SEC-PW-03 refuses a common password, in any case, wherever a password is set', async () => {
    for (const password of ['letmein123', 'LetMeIn123', 'password1']) {
      const res = await idp(['users', 'create', '--email', `common-${password}@example.com`, '--password', password], server.env);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('password: is one of the most common passwords');
    }
    const user = await idp(['users', 'create', '--email', 'uncommon@example.com', '--password', 'plum jacket orbit 7', '--json'], server.env);
    expect(user.code).toBe(0);
    const setCommon = await idp(['users', 'set-password', user.json<{ id: string }>().id, '--password', 'qwertyuiop'], server.env);
    expect(setCommon.code).toBe(1);
    expect(setCommon.stderr).toContain('most common passwords');
  });
});
