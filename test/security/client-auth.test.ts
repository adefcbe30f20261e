// Client authentication at the token endpoint: RFC 6749 §2.3 / §5.2, RFC 9700 §2.5, ASVS V51.
import { describe, expect, it } from 'vitest';
import { createdClient, idp } from '../helpers/cli.ts';
import { basic, post, securityContext } from './setup.ts';

const ctx = securityContext();
const cc = { grant_type: 'client_credentials' };

describe('client authentication', () => {
  it('SEC-CA-01 a wrong secret with Basic: 401 invalid_client and a Basic challenge', async () => {
    const res = await post(ctx, '/token', cc, { authorization: basic(ctx.app.clientId, 'wrong') });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('SEC-CA-02 a wrong secret in the body: 401 invalid_client', async () => {
    const res = await post(ctx, '/token', { ...cc, client_id: ctx.app.clientId, client_secret: 'wrong' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('SEC-CA-03 an unknown client: 401 invalid_client', async () => {
    const res = await post(ctx, '/token', cc, { authorization: basic('no-such-client', 'x') });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('SEC-CA-04 no authentication at all for a confidential client: 401', async () => {
    const res = await post(ctx, '/token', { ...cc, client_id: ctx.app.clientId });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('SEC-CA-05 two authentication methods at once: 400 invalid_request', async () => {
    const res = await post(ctx, '/token', { ...cc, client_id: ctx.app.clientId, client_secret: ctx.app.clientSecret! }, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });

  it('SEC-CA-06 a malformed Basic header: 400 or 401, never 500', async () => {
    for (const header of ['Basic', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, 'Bearer abc']) {
      const res = await post(ctx, '/token', cc, { authorization: header });
      expect([400, 401], header).toContain(res.status);
    }
  });

  it('SEC-CA-07 the stored hash presented as the secret is refused', async () => {
    const row = await ctx.server.current.db.prisma.client.findUniqueOrThrow({ where: { id: ctx.app.clientId } });
    const res = await post(ctx, '/token', cc, { authorization: basic(ctx.app.clientId, row.secretHash!) });
    expect(res.status).toBe(401);
  });

  it('SEC-CA-08 a disabled client cannot authenticate', async () => {
    const svc = createdClient(await idp(['clients', 'create', '--name', 'to-disable', '--grant-type', 'client_credentials', '--scope', '', '--json'], ctx.server.env));
    expect((await post(ctx, '/token', cc, { authorization: basic(svc.clientId, svc.clientSecret) })).status).toBe(200);
    await idp(['clients', 'disable', svc.clientId], ctx.server.env);
    // The CLI is another process: the server sees the change within CONFIG_REFRESH_SECONDS.
    const attempt = () => post(ctx, '/token', cc, { authorization: basic(svc.clientId, svc.clientSecret) });
    await expect.poll(async () => (await attempt()).status, { timeout: 5000 }).toBe(401);
    expect((await attempt()).body.error).toBe('invalid_client');
  });

  it('SEC-CA-09 a public client cannot use client_credentials', async () => {
    const spa = createdClient(await idp(['clients', 'create', '--name', 'spa', '--public', '--redirect-uri', 'https://spa.example.com/cb', '--json'], ctx.server.env));
    const res = await post(ctx, '/token', { ...cc, client_id: spa.clientId });
    // oidc-provider answers invalid_request ("requested grant type is not allowed for this client").
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
  });
});

describe('token endpoint', () => {
  it.each([['/token'], ['/token/revocation'], ['/token/introspection']])('SEC-TE-01 GET %s is refused with 405 and Allow: POST (no tokens over GET)', async (path) => {
    const res = await fetch(`${ctx.server.issuer}${path}?grant_type=client_credentials&client_id=${ctx.app.clientId}&client_secret=${ctx.app.clientSecret}`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('SEC-TE-03 a token request without grant_type: 400 invalid_request', async () => {
    const res = await post(ctx, '/token', {}, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });

  it('SEC-TE-04 client_credentials for an unregistered resource: 400 invalid_target, no token', async () => {
    const m2m = createdClient(await idp(['clients', 'create', '--name', 'm2m', '--grant-type', 'client_credentials', '--scope', '', '--json'], ctx.server.env));
    const res = await post(ctx, '/token', { ...cc, resource: 'https://unknown.example.com' }, { authorization: basic(m2m.clientId, m2m.clientSecret) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_target');
    expect(res.body.access_token).toBeUndefined();
  });

  it('SEC-TE-02 token responses, successful or not, are no-store', async () => {
    const ok = await post(ctx, '/token', cc, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    const bad = await post(ctx, '/token', cc, { authorization: basic(ctx.app.clientId, 'wrong') });
    for (const res of [ok, bad]) expect(res.headers.get('cache-control')).toBe('no-store');
  });
});
