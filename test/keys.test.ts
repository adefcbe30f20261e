import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { idp } from './helpers/cli.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const SECRET = 'k'.repeat(40);

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('signing keys', () => {
  it('are generated on first start (RS256, ES256, EdDSA) and published without private parts', async () => {
    server = await startServer();
    const jwks = (await (await fetch(new URL('/jwks', server.issuer))).json()) as { keys: Record<string, string>[] };
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    for (const key of jwks.keys) {
      expect(key.kid).toBeTruthy();
      for (const privatePart of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key).not.toHaveProperty(privatePart);
    }

    const listed = await idp(['keys', 'list', '--json'], server.env);
    expect(listed.code).toBe(0);
    const { items: keys } = listed.json<{ items: { kid: string; alg: string; state: string }[] }>();
    expect(keys.map((k) => k.kid).sort()).toEqual(jwks.keys.map((k) => k.kid).sort());
    expect(keys.every((k) => k.state === 'active')).toBe(true);
    expect(listed.stdout).not.toMatch(/"d":/);
  });

  it('are encrypted at rest with KEY_ENCRYPTION_SECRET, and the server refuses to start without it', async () => {
    server = await startServer({ KEY_ENCRYPTION_SECRET: SECRET });
    const rows = await server.current.db.prisma.signingKey.findMany();
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.encrypted).toBe(true);
      expect(row.privateJwk).toMatch(/^v1\./);
      expect(row.privateJwk).not.toContain('"d"');
    }
    await server.current.app.close();

    const { KEY_ENCRYPTION_SECRET: _drop, ...withoutSecret } = server.env;
    await expect(buildApp(loadConfig(withoutSecret))).rejects.toThrow(/encrypted at rest but KEY_ENCRYPTION_SECRET is not set/);
    await expect(buildApp(loadConfig({ ...server.env, KEY_ENCRYPTION_SECRET: 'z'.repeat(40) }))).rejects.toThrow(/cannot be decrypted/);

    // With the right secret, the same keys come back.
    server.current = await buildApp(loadConfig(server.env));
    const again = await server.current.db.prisma.signingKey.findMany();
    expect(again.map((k) => k.kid).sort()).toEqual(rows.map((k) => k.kid).sort());
  });

  it('stored in plaintext are encrypted in place once a secret is configured', async () => {
    server = await startServer();
    const before = await server.current.db.prisma.signingKey.findMany();
    expect(before.every((k) => !k.encrypted)).toBe(true);
    await server.current.app.close();
    server.current = await buildApp(loadConfig({ ...server.env, KEY_ENCRYPTION_SECRET: SECRET }));
    const after = await server.current.db.prisma.signingKey.findMany();
    expect(after.every((k) => k.encrypted && k.privateJwk.startsWith('v1.'))).toBe(true);
    expect(after.map((k) => k.kid).sort()).toEqual(before.map((k) => k.kid).sort());
  });
});
