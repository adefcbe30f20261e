import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliActor } from '../src/audit/service.ts';
import { adminApi } from './helpers/admin.ts';
import { createdClient, idp } from './helpers/cli.ts';
import { approve, DEVICE_GRANT, deviceClient, postDeviceForm, typeCode } from './helpers/device.ts';
import { discover } from './helpers/flow.ts';
import { seed, withServices } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const short = (userCode: string) => userCode.replace('-', '').toLowerCase();

let server: TestServer;
let seeded: Awaited<ReturnType<typeof seed>>;
let clientId: string;
let config: oidc.Configuration;

beforeAll(async () => {
  server = await startServer({ DEVICE_CODES_PER_MINUTE: '100000' });
  seeded = await seed(server.env, { redirectUri: 'http://127.0.0.1:8765/callback' });
  clientId = await deviceClient(server.env);
  config = await discover(server.issuer, clientId);
});
afterAll(() => server?.close());

describe('the device authorization grant (RFC 8628)', () => {
  it('is advertised in discovery, with the device authorization endpoint', () => {
    const meta = config.serverMetadata();
    expect(meta.device_authorization_endpoint).toBe(`${server.issuer}/device/auth`);
    expect(meta.grant_types_supported).toContain(DEVICE_GRANT);
  });

  it('signs a person in on a public client: the code typed in lower case without the dash, login, consent, then tokens for the poller', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile email offline_access' });
    expect(device.verification_uri).toBe(`${server.issuer}/device`);
    expect(device.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(device.interval).toBe(5);

    const ua = new UserAgent();
    const confirm = await typeCode(ua, device.verification_uri, short(device.user_code));
    expect(confirm.res.status).toBe(200);
    expect(confirm.html).toContain('Living Room TV');
    expect(confirm.html).toContain(device.user_code);
    const done = await approve(ua, confirm, { login: seeded });
    expect(done.res.status).toBe(200);
    expect(done.html).toContain('Device connected');
    expect(done.html).toContain('Living Room TV');

    const tokens = await oidc.pollDeviceAuthorizationGrant(config, device);
    expect(tokens.claims()!.sub).toBe(seeded.userId);
    expect(tokens.claims()!.aud).toBe(clientId);
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
  }, 30_000);

  it('refuses a client that is not allowed the grant: unauthorized_client at /device/auth', async () => {
    const other = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
    const err = await oidc.initiateDeviceAuthorization(other, { scope: 'openid' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ error: 'unauthorized_client' });
  });

  it('answers a wrong code with the form again and an error (400), never a 500', async () => {
    await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const ua = new UserAgent();
    const wrong = await typeCode(ua, `${server.issuer}/device`, 'bcdf-ghjk');
    expect(wrong.res.status).toBe(400);
    expect(wrong.html).toContain('That code is not right');
    expect(wrong.html).toContain('name="user_code"');
    expect(wrong.html).toContain('value="bcdf-ghjk"');
    // The form again works: a fresh CSRF input, and no code at all is refused the same way.
    const empty = await postDeviceForm(ua, wrong.url, wrong.html, { user_code: '' });
    expect(empty.res.status).toBe(400);
    expect(empty.html).toContain('That code is not right');
    // A form without the page's CSRF input is refused with the form again, not a 500.
    const forged = await ua.request(`${server.issuer}/device`, { method: 'POST', body: new URLSearchParams({ user_code: 'bcdf-ghjk', xsrf: 'nope' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('name="user_code"');
  });

  it('ends in access_denied for the poller when the person denies on the consent page', async () => {
    // Someone who never consented to this app (a grant once given is remembered).
    const person = { email: `deny-${Date.now()}@example.com`, password: 'a long enough password' };
    await withServices(server.env, ({ users }) => users.create(person, cliActor()));
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const ua = new UserAgent();
    const confirm = await typeCode(ua, device.verification_uri, device.user_code);
    const done = await approve(ua, confirm, { login: person, deny: true });
    expect(done.res.status).toBe(200);
    expect(done.html).toContain('Device not connected');
    const err = await oidc.pollDeviceAuthorizationGrant(config, device).catch((e: unknown) => e);
    expect(err).toMatchObject({ error: 'access_denied' });
  }, 30_000);

  it('ends in access_denied when the person cancels on the confirmation page, and the code cannot be used again', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const ua = new UserAgent();
    const confirm = await typeCode(ua, device.verification_uri, device.user_code);
    const cancelled = await postDeviceForm(ua, confirm.url, confirm.html, { user_code: device.user_code, confirm: 'yes', abort: 'yes' });
    expect(cancelled.res.status).toBe(200);
    expect(cancelled.html).toContain('Device not connected');
    const again = await typeCode(ua, device.verification_uri, device.user_code);
    expect(again.res.status).toBe(400);
    expect(again.html).toContain('already been used');
    const err = await oidc.pollDeviceAuthorizationGrant(config, device).catch((e: unknown) => e);
    expect(err).toMatchObject({ error: 'access_denied' });
  }, 30_000);

  it('answers a poll sooner than the interval with slow_down (a public client, no secret)', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const poll = async () => {
      const res = await fetch(`${server.issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: clientId }) });
      return { status: res.status, body: (await res.json()) as { error?: string } };
    };
    expect(await poll()).toMatchObject({ status: 400, body: { error: 'authorization_pending' } });
    expect(await poll()).toMatchObject({ status: 400, body: { error: 'slow_down' } });
  });

  it('is allowed per client through the CLI (--grant-type device_code) and the admin API, shown by clients show; refresh_token needs a person grant', async () => {
    const created = await idp(['clients', 'create', '--name', 'CLI TV', '--public', '--grant-type', 'device_code', '--grant-type', 'refresh_token', '--json'], server.env);
    expect(created.code, created.stderr).toBe(0);
    const { clientId: cliClient } = createdClient(created);
    const shown = JSON.parse((await idp(['clients', 'show', cliClient, '--json'], server.env)).stdout) as { grantTypes: string[]; redirectUris: string[] };
    expect(shown).toMatchObject({ grantTypes: [DEVICE_GRANT, 'refresh_token'], redirectUris: [] });
    expect((await idp(['clients', 'show', cliClient], server.env)).stdout).toContain(DEVICE_GRANT);

    const admin = await adminApi(server);
    const made = await admin.call<{ client: { clientId: string; grantTypes: string[] } }>('POST', '/admin/v1/clients', { name: 'API TV', public: true, grantTypes: [DEVICE_GRANT] });
    expect(made.status).toBe(201);
    expect(made.body.client.grantTypes).toEqual([DEVICE_GRANT]);
    const refused = await admin.call<{ error_description?: string }>('POST', '/admin/v1/clients', { name: 'x', grantTypes: ['refresh_token', 'client_credentials'] });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('refresh_token requires authorization_code or');
  }, 30_000);
});

describe('too many codes from one address', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startServer({ DEVICE_CODES_PER_MINUTE: '3' });
  });
  afterAll(() => limited?.close());

  it('answers 429 with Retry-After once the address typed too many codes in a minute', async () => {
    const ua = new UserAgent();
    const page = await ua.follow(`${limited.issuer}/device`);
    let html = await page.res.text();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const step = await postDeviceForm(ua, page.url, html, { user_code: 'bcdf-ghjk' });
      statuses.push(step.res.status);
      if (step.res.status === 429) {
        expect(step.res.headers.get('retry-after')).toBe('60');
        expect(step.html).toContain('Too many codes');
      } else html = step.html;
    }
    expect(statuses).toEqual([400, 400, 400, 429]);
  });
});
