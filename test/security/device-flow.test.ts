// The device authorization grant: RFC 8628 §3.3, §3.5, §5.1–5.2 (user code brute force, remote phishing), §3.4 (polling).
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approve, DEVICE_GRANT, deviceClient, postDeviceForm, typeCode } from '../helpers/device.ts';
import { discover, REDIRECT_URI } from '../helpers/flow.ts';
import { seed } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';

let server: TestServer;
let person: Awaited<ReturnType<typeof seed>>;
let clientId: string;
let config: oidc.Configuration;

beforeAll(async () => {
  server = await startServer({ DEVICE_CODES_PER_MINUTE: '100000' });
  person = await seed(server.env, { redirectUri: REDIRECT_URI });
  clientId = await deviceClient(server.env);
  config = await discover(server.issuer, clientId);
});
afterAll(() => server?.close());

/** A raw poll of the token endpoint by a public client. */
async function poll(client: string, deviceCode: string, issuer = server.issuer) {
  const res = await fetch(`${issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: client }) });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe('user codes', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startServer({ DEVICE_CODES_PER_MINUTE: '3' });
  });
  afterAll(() => limited?.close());

  it('SEC-DV-01 guessing user codes from one address is limited: past the limit, 429 with Retry-After, and even the right code is not looked at', async () => {
    const limitedClient = await discover(limited.issuer, await deviceClient(limited.env));
    const device = await oidc.initiateDeviceAuthorization(limitedClient, { scope: 'openid' });
    const ua = new UserAgent();
    const page = await ua.follow(device.verification_uri);
    let html = await page.res.text();
    for (let i = 0; i < 3; i++) {
      const wrong = await postDeviceForm(ua, page.url, html, { user_code: `bcdf-ghj${'klm'[i]}` });
      expect(wrong.res.status).toBe(400);
      html = wrong.html;
    }
    const right = await postDeviceForm(ua, page.url, html, { user_code: device.user_code });
    expect(right.res.status).toBe(429);
    expect(right.res.headers.get('retry-after')).toBe('60');
    expect(right.html).not.toContain('op.deviceConfirmForm');
    // The right code was never approved: still pending for the device.
    expect((await poll(limitedClient.clientMetadata().client_id, device.device_code, limited.issuer)).body.error).toBe('authorization_pending');
  });

  it('SEC-DV-02 a user code is approved once only: typed again it is refused as used (400), and its device code is redeemed once', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const ua = new UserAgent();
    const confirm = await typeCode(ua, device.verification_uri, device.user_code);
    const done = await approve(ua, confirm, { login: person });
    expect(done.html).toContain('Device connected');
    const again = await typeCode(new UserAgent(), device.verification_uri, device.user_code);
    expect(again.res.status).toBe(400);
    expect(again.html).toContain('already been used');
    expect((await poll(clientId, device.device_code)).status).toBe(200);
    expect(await poll(clientId, device.device_code)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('SEC-DV-03 the code form is refused from another site (403) and without its CSRF input (400, the form again), and the code stays unused', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const ua = new UserAgent();
    const page = await ua.follow(device.verification_uri);
    const html = await page.res.text();
    const xsrf = /name="xsrf" value="([0-9a-f]+)"/.exec(html)![1]!;
    const crossSite = await ua.request(`${server.issuer}/device`, {
      method: 'POST',
      body: new URLSearchParams({ xsrf, user_code: device.user_code }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://attacker.example' },
    });
    expect(crossSite.status).toBe(403);
    const noToken = await ua.request(`${server.issuer}/device`, { method: 'POST', body: new URLSearchParams({ user_code: device.user_code }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(noToken.status).toBe(400);
    expect(await noToken.text()).not.toContain('op.deviceConfirmForm');
    const confirm = await typeCode(ua, device.verification_uri, device.user_code);
    expect(confirm.res.status).toBe(200);
    expect(confirm.html).toContain('op.deviceConfirmForm');
  });
});

describe('device codes', () => {
  it('SEC-DV-04 a device code cannot be redeemed by another client, and its own client still gets the tokens', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const ua = new UserAgent();
    await approve(ua, await typeCode(ua, device.verification_uri, device.user_code), { login: person });
    const otherClient = await deviceClient(server.env);
    expect(await poll(otherClient, device.device_code)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const tokens = await poll(clientId, device.device_code);
    expect(tokens.status).toBe(200);
    expect(tokens.body.id_token).toBeTruthy();
  });

  it('SEC-DV-05 polling faster than the interval gets slow_down; after the interval, authorization_pending again', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    expect(device.interval).toBe(5);
    expect((await poll(clientId, device.device_code)).body.error).toBe('authorization_pending');
    expect((await poll(clientId, device.device_code)).body.error).toBe('slow_down');
    await new Promise((resolve) => setTimeout(resolve, 5100));
    expect((await poll(clientId, device.device_code)).body.error).toBe('authorization_pending');
  }, 15_000);

  it('SEC-DV-06 the device authorization endpoint takes POST only, refuses a client not allowed the grant (unauthorized_client) and an unknown client (invalid_client)', async () => {
    expect((await fetch(`${server.issuer}/device/auth?client_id=${clientId}`)).status).toBe(405);
    const codeClient = await discover(server.issuer, person.clientId, person.clientSecret);
    await expect(oidc.initiateDeviceAuthorization(codeClient, { scope: 'openid' })).rejects.toMatchObject({ error: 'unauthorized_client' });
    const res = await fetch(`${server.issuer}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'nobody', scope: 'openid' }) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
  });
});
