import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/index.ts';
import { idp } from './helpers/cli.ts';
import { createTestDatabase, TEST_PROVIDER, type TestDatabase } from './helpers/database.ts';

let dir: string;
let env: Record<string, string>;
let database: TestDatabase;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idp-cli-'));
  database = await createTestDatabase();
  env = { DATABASE_URL: database.url, LOG_LEVEL: 'silent' };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await database.drop();
});

async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(env.DATABASE_URL!);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

describe('idp migrate', () => {
  it('creates the database, applies the migrations once, and records them', async () => {
    const first = await idp(['migrate', '--json'], env);
    expect(first.code).toBe(0);
    const committed = (await readdir(new URL(`../prisma/migrations/${TEST_PROVIDER}/`, import.meta.url), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    expect(committed[0]).toMatch(/^\d{14}_init$/);
    expect(first.json<{ applied: string[] }>().applied).toEqual(committed);
    const second = await idp(['migrate', '--json'], env);
    expect(second.json<{ applied: string[] }>().applied).toEqual([]);
    const rows = await withDb((db) => db.prisma.$queryRaw<{ migration_name: string }[]>`SELECT migration_name FROM _prisma_migrations`);
    expect(rows).toHaveLength(committed.length);
  });
});

describe('idp users create', () => {
  it('creates a user from a password on stdin, with a normalized email and an argon2id hash', async () => {
    const res = await idp(['users', 'create', '--email', '  Ｍary@Example.COM ', '--password-stdin', '--name', 'Mary', '--json'], env, 'a fine password\n');
    expect(res.code).toBe(0);
    const out = res.json<{ id: string; email: string }>();
    // The same user view as the admin API's: never the password hash.
    expect(out).toMatchObject({ id: expect.any(String), email: 'mary@example.com', name: 'Mary', emailVerified: false, hasPassword: true, disabled: false });
    expect(res.stdout).not.toContain('argon2');
    const user = await withDb((db) => db.prisma.user.findUniqueOrThrow({ where: { id: out.id } }));
    expect(user.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect(user.passwordHash).not.toContain('a fine password');
  });

  it.each([
    ['a duplicate email', ['--email', 'mary@example.com', '--password', 'another password'], /already exists/],
    ['an invalid email', ['--email', 'not-an-email', '--password', 'another password'], /--email: must be a valid email address/],
    ['a short password', ['--email', 'short@example.com', '--password', 'short'], /--password: must be at least 8 characters/],
    ['no password', ['--email', 'nopw@example.com'], /password is required/],
    ['both password options', ['--email', 'both@example.com', '--password', 'long enough pw', '--password-stdin'], /either --password or --password-stdin/],
  ])('refuses %s with a clear message and exit 1', async (_name, args, message) => {
    const res = await idp(['users', 'create', ...args, '--json'], env);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(JSON.parse(res.stderr).error_description).toMatch(message);
  });

  it('refuses a missing required option with usage help and exit 2', async () => {
    const res = await idp(['users', 'create', '--password', 'whatever123'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("required option '--email <email>' not specified");
    expect(res.stderr).toContain('Usage: idp users create');
  });

  it('refuses an unknown command with exit 2', async () => {
    const res = await idp(['frobnicate'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown command 'frobnicate'");
  });
});

describe('idp resources create', () => {
  it('registers an API', async () => {
    const res = await idp(['resources', 'create', '--identifier', 'https://api.example.org', '--scope', 'read write read', '--access-token-ttl', '300', '--signing-alg', 'ES256', '--json'], env);
    expect(res.code).toBe(0);
    expect(res.json()).toMatchObject({ identifier: 'https://api.example.org', scopes: ['read', 'write'], accessTokenTtl: 300, signingAlg: 'ES256' });
  });

  it.each([
    ['a relative identifier', ['--identifier', '/api'], 1, /--identifier: must be an absolute URI/],
    ['a fragment', ['--identifier', 'https://api.example.org/#x'], 1, /must not contain a fragment/],
    ['a duplicate', ['--identifier', 'https://api.example.org'], 1, /already exists/],
    ['a non-numeric TTL', ['--identifier', 'https://b.example.org', '--access-token-ttl', 'soon'], 1, /--access-token-ttl must be a whole number/],
    ['a TTL too long', ['--identifier', 'https://b.example.org', '--access-token-ttl', '999999'], 1, /at most 86400/],
    ['an unknown algorithm', ['--identifier', 'https://b.example.org', '--signing-alg', 'HS256'], 2, /Allowed choices are RS256, ES256, EdDSA/],
  ])('refuses %s', async (_name, args, code, message) => {
    const res = await idp(['resources', 'create', ...args], env);
    expect(res.code).toBe(code);
    expect(res.stderr).toMatch(message);
  });
});

describe('idp clients create', () => {
  it('shows a confidential client secret once and stores only its hash', async () => {
    const res = await idp(['clients', 'create', '--name', 'Web', '--redirect-uri', 'https://app.example.com/cb', '--redirect-uri', 'http://localhost:3001/cb', '--json'], env);
    expect(res.code).toBe(0);
    const { client, clientSecret: client_secret } = res.json<{ client: { clientId: string }; clientSecret: string }>();
    const client_id = client.clientId;
    // Letters and digits only: an id starting with "-" would read as an option on command lines.
    expect(client_id).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(client_secret.length).toBeGreaterThanOrEqual(43);
    const row = await withDb((db) => db.prisma.client.findUniqueOrThrow({ where: { id: client_id }, include: { origins: true } }));
    expect(row.secretHash).toMatch(/^sha256:/);
    expect(JSON.stringify(row)).not.toContain(client_secret);
    expect(row.origins.map((o) => o.origin).sort()).toEqual(['http://localhost:3001', 'https://app.example.com']);
  });

  it('registers a native app with a reverse-domain private-use scheme', async () => {
    const res = await idp(['clients', 'create', '--name', 'Mobile', '--redirect-uri', 'com.example.app:/callback', '--public', '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const client_id = res.json<{ client: { clientId: string } }>().client.clientId;
    const row = await withDb((db) => db.prisma.client.findUniqueOrThrow({ where: { id: client_id } }));
    expect(JSON.parse(row.metadata)).toMatchObject({ application_type: 'native', redirect_uris: ['com.example.app:/callback'] });
  });

  it('creates a public client without a secret', async () => {
    const res = await idp(['clients', 'create', '--name', 'SPA', '--redirect-uri', 'https://spa.example.com/cb', '--public', '--json'], env);
    expect(res.code).toBe(0);
    expect(Object.keys(res.json())).toEqual(['client']);
  });

  it.each([
    ['no name', ['--redirect-uri', 'https://a.example.com/cb'], 2, /required option '--name <name>'/],
    ['plain http to a remote host', ['--name', 'x', '--redirect-uri', 'http://a.example.com/cb'], 1, /must use https/],
    ['a fragment', ['--name', 'x', '--redirect-uri', 'https://a.example.com/cb#frag'], 1, /must not contain a fragment/],
    ['a wildcard', ['--name', 'x', '--redirect-uri', 'https://*.example.com/cb'], 1, /must not contain a wildcard/],
    ['a javascript: URI', ['--name', 'x', '--redirect-uri', 'javascript:alert(1)'], 1, /forbidden scheme/],
    ['a relative URI', ['--name', 'x', '--redirect-uri', '/cb'], 1, /is not an absolute URI/],
    ['a private-use scheme not in reverse-domain form', ['--name', 'x', '--redirect-uri', 'myapp:/cb'], 1, /reverse-domain form/],
    ['no redirect URI for the code flow', ['--name', 'x'], 1, /at least one redirect URI/],
    ['a public client with client_credentials', ['--name', 'x', '--public', '--grant-type', 'client_credentials'], 1, /public client cannot use client_credentials/],
    ['an unknown grant type', ['--name', 'x', '--grant-type', 'password'], 1, /--grant-type: Invalid option: expected one of "authorization_code"\|"refresh_token"\|"client_credentials"/],
    ['a bad allowed origin', ['--name', 'x', '--redirect-uri', 'https://a.example.com/cb', '--allowed-origin', 'https://a.example.com/path'], 1, /must be an origin/],
  ])('refuses %s', async (_name, args, code, message) => {
    const res = await idp(['clients', 'create', ...args], env);
    expect(res.code).toBe(code);
    expect(res.stderr).toMatch(message);
  });
});

describe('configuration', () => {
  it.each([
    ['an unsupported database', { DATABASE_URL: 'mysql://localhost/idp' }, /DATABASE_URL: unsupported database URL scheme "mysql:"/],
    ['a bad port', { PORT: 'eighty' }, /PORT: /],
    ['a bad issuer', { ISSUER: 'not a url' }, /ISSUER: must be an http\(s\) URL/],
    ['a short cookie secret', { COOKIE_SECRETS: 'short' }, /COOKIE_SECRETS: must be at least 32 characters/],
    ['production without secrets', { NODE_ENV: 'production' }, /COOKIE_SECRETS: required in production[\s\S]*KEY_ENCRYPTION_SECRET: required in production/],
    ['production on plain http', { NODE_ENV: 'production', ISSUER: 'http://idp.example.com', COOKIE_SECRETS: 'x'.repeat(32), KEY_ENCRYPTION_SECRET: 'y'.repeat(32) }, /ISSUER: must be https in production/],
  ])('stops with a clear message on %s', async (_name, extra, message) => {
    const res = await idp(['migrate'], { ...env, ...extra });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(message);
  });
});

describe('the server process (npm start)', () => {
  it('serves discovery on first start and exits cleanly on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const child = spawn(process.execPath, [main], {
      env: { ...process.env, ...env, DATABASE_URL: `file:${join(dir, 'fresh', 'idp.db')}`, PORT: '0', ISSUER: 'http://localhost:4321', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const address = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        output += d;
        const match = /"address":"(http:\/\/[^"]+)"/.exec(output);
        if (match) resolve(match[1]!);
      });
      child.on('exit', () => reject(new Error(`server exited early: ${output}`)));
    });
    const res = await fetch(`${address}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { issuer: string }).issuer).toBe('http://localhost:4321');
    const exitCode = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exitCode).toBe(0);
  });
});
