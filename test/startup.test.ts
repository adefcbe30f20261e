// A server that cannot start says why in one line that names the setting, and exits with 1.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PROVIDER } from './helpers/database.ts';
import { freePort } from './helpers/server.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idp-startup-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Starts the server with `env` and waits for it to exit (it must not start). */
function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: `file:${join(dir, 'ok', 'idp.db')}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

/** One line on standard error, starting with "idp: ", no stack trace. */
function expectOneLine(res: { code: number | null; stderr: string }, pattern: RegExp) {
  expect(res.code).toBe(1);
  const lines = res.stderr.trim().split('\n');
  expect(lines.every((l) => !/^\s+at /.test(l)), res.stderr).toBe(true);
  expect(lines[0]).toMatch(/^idp: /);
  expect(res.stderr).toMatch(pattern);
}

describe('start-up failures', () => {
  it('reports every configuration problem in one pass', async () => {
    const res = await start({ NODE_ENV: 'production', PORT: 'eighty', ISSUER: 'https://login.example.com/?x=1', GOOGLE_CLIENT_ID: 'only-the-id' });
    expect(res.code).toBe(1);
    for (const name of ['PORT:', 'ISSUER: must not contain a query', 'COOKIE_SECRETS: required in production', 'KEY_ENCRYPTION_SECRET: required in production', 'GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET']) {
      expect(res.stderr).toContain(name);
    }
  });

  it('a port already in use: one line naming PORT', async () => {
    const port = await freePort();
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      expectOneLine(await start({ PORT: String(port), ISSUER: `http://127.0.0.1:${port}` }), /PORT: \d+ on 127\.0\.0\.1 is already in use/);
    } finally {
      taken.close();
    }
  });

  it.runIf(TEST_PROVIDER === 'sqlite')('a damaged SQLite file, and a database path through a file: one line naming DATABASE_URL', async () => {
    const garbage = join(dir, 'garbage.db');
    await writeFile(garbage, 'this is not a database, just some text that is long enough to have a header '.repeat(20));
    expectOneLine(await start({ DATABASE_URL: `file:${garbage}` }), /DATABASE_URL: .*garbage\.db is not a SQLite database, or it is damaged/);
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    expectOneLine(await start({ DATABASE_URL: `file:${file}/idp.db` }), /DATABASE_URL: cannot create the folder .*a-file .*a file is in the way/);
  });

  it.runIf(TEST_PROVIDER === 'postgresql')('PostgreSQL unreachable, a database that does not exist, an unknown user, a reserved character in the password: one line naming DATABASE_URL', async () => {
    const server = new URL(process.env.TEST_DATABASE_URL!);
    const closed = await freePort();
    expectOneLine(await start({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${closed}/test` }), new RegExp(`DATABASE_URL: cannot reach the database at 127\\.0\\.0\\.1:${closed}/test`));
    expectOneLine(await start({ DATABASE_URL: `postgresql://postgres@${server.host}/no_such_database_here` }), /DATABASE_URL: the database "no_such_database_here" does not exist/);
    expectOneLine(await start({ DATABASE_URL: `postgresql://nobody_here:pw@${server.host}/test` }), /DATABASE_URL: the database at .* refused the user name or password/);
    const reserved = await start({ DATABASE_URL: `postgresql://postgres:pa/ss@${server.host}/test` });
    expectOneLine(reserved, /DATABASE_URL: the user name or password holds a reserved character: percent-encode it/);
    expect(reserved.stderr).not.toContain('pa/ss');
  });
});
