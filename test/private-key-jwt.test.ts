import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp, idpOk } from './helpers/cli.ts';
import { startServer, type TestServer } from './helpers/server.ts';

/** Clients that authenticate with their own keys (private_key_jwt, RFC 7523), registered by an admin through the admin API and the CLI. */
let server: TestServer;
let api: AdminApi;
const API = 'https://billing.example.com';
beforeAll(async () => {
  server = await startServer();
  api = await adminApi(server);
  expect((await api.call('POST', '/admin/v1/resources', { identifier: API, scopes: ['read'] })).status).toBe(201);
});
afterAll(async () => {
  await server?.close();
});

/** A key pair as a client keeps it: the private key to sign with, the public JWK to register. */
async function clientKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey: { key: privateKey, kid }, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }, privateJwk: { ...(await exportJWK(privateKey)), kid } };
}

/** A client_credentials token request signed with `key`: the token, or the error. */
async function tokenWith(clientId: string, key: { key: CryptoKey; kid: string }) {
  const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt(key), { execute: [oidc.allowInsecureRequests] });
  return oidc.clientCredentialsGrant(config, { resource: API, scope: 'read' }).then(
    (tokens) => ({ ok: true as const, tokens }),
    (err: { error?: string }) => ({ ok: false as const, error: err.error }),
  );
}

describe('private_key_jwt clients', () => {
  it('through the admin API: registered with public keys, no secret issued; its assertions get tokens, another key’s do not', async () => {
    const key = await clientKey('worker-1');
    const created = await api.call<{ client: { clientId: string; tokenEndpointAuthMethod: string; jwks: unknown; public: boolean }; clientSecret?: string }>('POST', '/admin/v1/clients', {
      name: 'Billing worker',
      grantTypes: ['client_credentials'],
      scope: '',
      apis: { [API]: ['read'] },
      jwks: { keys: [key.publicJwk] },
    });
    expect(created.status).toBe(201);
    expect(created.body.clientSecret).toBeUndefined();
    expect(created.body.client).toMatchObject({ tokenEndpointAuthMethod: 'private_key_jwt', public: false, jwks: { keys: [key.publicJwk] } });
    const { clientId } = created.body.client;

    const granted = await tokenWith(clientId, key.privateKey);
    expect(granted.ok).toBe(true);
    const stranger = await clientKey('worker-1');
    expect(await tokenWith(clientId, stranger.privateKey)).toEqual({ ok: false, error: 'invalid_client' });

    // It has no secret to rotate.
    const rotate = await api.call<{ error_description: string }>('POST', `/admin/v1/clients/${clientId}/rotate-secret`, {});
    expect(rotate.status).toBe(400);
    expect(rotate.body.error_description).toContain('private_key_jwt');
  });

  it('refuses a private key, a symmetric key, keys on a public client, both jwks and jwksUri, and keys for a client with a secret: 400, naming the field', async () => {
    const key = await clientKey('k');
    const base = { name: 'Bad', grantTypes: ['client_credentials'], scope: '' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, jwks: { keys: [key.privateJwk] } }, /jwks.*public key/],
      [{ ...base, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, /jwks.*kty/],
      [{ ...base, grantTypes: ['authorization_code'], redirectUris: ['https://app.example.com/cb'], public: true, jwks: { keys: [key.publicJwk] } }, /jwks.*public client/],
      [{ ...base, jwks: { keys: [key.publicJwk] }, jwksUri: 'https://keys.example.com/jwks.json' }, /jwksUri.*not both/],
      [{ ...base, jwksUri: 'http://keys.example.com/jwks.json' }, /jwksUri.*https/],
    ];
    for (const [body, message] of cases) {
      const res = await api.call<{ error_description: string }>('POST', '/admin/v1/clients', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error_description).toMatch(message);
    }
    const secretClient = await api.call<{ client: { clientId: string } }>('POST', '/admin/v1/clients', base);
    const patched = await api.call<{ error_description: string }>('PATCH', `/admin/v1/clients/${secretClient.body.client.clientId}`, { jwks: { keys: [key.publicJwk] } });
    expect(patched.status).toBe(400);
    expect(patched.body.error_description).toContain('secret');
  });

  it('through the CLI: --jwks FILE at creation (no secret printed), and new keys replace the old ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idp-jwks-'));
    try {
      const first = await clientKey('one');
      const second = await clientKey('two');
      writeFileSync(join(dir, 'one.json'), JSON.stringify({ keys: [first.publicJwk] }));
      writeFileSync(join(dir, 'two.json'), JSON.stringify({ keys: [second.publicJwk] }));
      writeFileSync(join(dir, 'bad.json'), 'not json');

      const out = JSON.parse(await idpOk(['clients', 'create', '--name', 'CLI worker', '--grant-type', 'client_credentials', '--scope', '', '--api', `${API} read`, '--jwks', join(dir, 'one.json'), '--json'], server.env)) as { client: { clientId: string; tokenEndpointAuthMethod: string }; clientSecret?: string };
      expect(out.clientSecret).toBeUndefined();
      expect(out.client.tokenEndpointAuthMethod).toBe('private_key_jwt');
      const { clientId } = out.client;
      expect((await tokenWith(clientId, first.privateKey)).ok).toBe(true);

      await idpOk(['clients', 'update', clientId, '--jwks', join(dir, 'two.json')], server.env);
      // The CLI is another process: the server sees the change at its next refresh (CONFIG_REFRESH_SECONDS).
      await expect.poll(async () => (await tokenWith(clientId, second.privateKey)).ok, { timeout: 10_000, interval: 250 }).toBe(true);
      expect(await tokenWith(clientId, first.privateKey)).toEqual({ ok: false, error: 'invalid_client' });

      const bad = await idp(['clients', 'update', clientId, '--jwks', join(dir, 'bad.json')], server.env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('--jwks');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
