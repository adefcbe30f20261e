// Consent: OIDC Core §3.1.2.4; RFC 9700 §2.1, §4.1; RFC 7591 §5 (a registrant is not vouched for).
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { idp } from '../helpers/cli.ts';
import { authorize, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { securityContext } from './setup.ts';

const ctx = securityContext();
let admin: AdminApi;
beforeAll(async () => {
  admin = await adminApi(ctx.server);
});

const login = () => ({ email: ctx.app.email, password: ctx.app.password });

/** A sign-in in a fresh browser: whether the consent page came up. */
async function asked(opts: { scope: string; prompt?: string }) {
  const started = await authorize(new UserAgent(), ctx.config, { login: login(), consent: false, prompt: opts.prompt ?? 'login', scope: opts.scope });
  return !started.callbackUrl.href.startsWith(REDIRECT_URI);
}

describe('remembered consent', () => {
  it('SEC-CN-01 a remembered consent covers only what was granted: a new scope or API scope brings the page back, and no token carries more than the grant', async () => {
    await loginAndExchange(new UserAgent(), ctx.config, { login: login(), scope: 'openid', prompt: 'login' });
    expect(await asked({ scope: 'openid' })).toBe(false);
    expect(await asked({ scope: 'openid email' })).toBe(true);
    // Skipping the page is impossible: the pending authorization cannot be completed without it.
    const started = await authorize(new UserAgent(), ctx.config, { login: login(), consent: false, prompt: 'login', scope: 'openid read', resource: 'https://api.example.com' });
    expect(started.callbackUrl.href.startsWith(REDIRECT_URI)).toBe(false);
    expect(await started.last.res.text()).toContain('Allow access');
  });

  it.each([
    ['by an admin', async () => {
      expect((await admin.call('DELETE', `/admin/v1/users/${ctx.app.userId}/grants`)).status).toBe(200);
    }],
    ['by the app, revoking its refresh token', async (refreshToken: string) => {
      await oidc.tokenRevocation(ctx.config, refreshToken);
    }],
  ])('SEC-CN-02 a grant revoked %s is asked for again at the next sign-in', async (_name, revoke) => {
    const { tokens } = await loginAndExchange(new UserAgent(), ctx.config, { login: login(), scope: 'openid offline_access', prompt: 'consent' });
    expect(await asked({ scope: 'openid' })).toBe(false);
    await revoke(tokens.refresh_token!);
    expect(await asked({ scope: 'openid' })).toBe(true);
  });

  it('SEC-CN-03 prompt=consent shows the page to a third-party app’s user even when a grant covers the request', async () => {
    await loginAndExchange(new UserAgent(), ctx.config, { login: login(), scope: 'openid', prompt: 'login' });
    expect(await asked({ scope: 'openid', prompt: 'consent' })).toBe(true);
  });
});

describe('first-party apps', () => {
  it('SEC-CN-04 a dynamically registered client can never skip consent: first_party in its registration is ignored, and an admin cannot mark it', async () => {
    const iat = (await idp(['clients', 'initial-access-token', 'create', '--json'], ctx.server.env)).json<{ initialAccessToken: string }>().initialAccessToken;
    const res = await fetch(new URL('/register', ctx.server.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` },
      body: JSON.stringify({ client_name: 'Registrant', redirect_uris: [REDIRECT_URI], first_party: true, firstParty: true }),
    });
    expect(res.status).toBe(201);
    const { client_id } = (await res.json()) as { client_id: string };
    const shown = await admin.call<{ firstParty: boolean; dynamic: boolean }>('GET', `/admin/v1/clients/${client_id}`);
    expect(shown.body).toMatchObject({ firstParty: false, dynamic: true });
    const marked = await admin.call<{ error_description: string }>('PATCH', `/admin/v1/clients/${client_id}`, { firstParty: true });
    expect(marked.status).toBe(400);
    expect(marked.body.error_description).toContain('dynamically registered client cannot be first-party');
    expect((await admin.call<{ firstParty: boolean }>('GET', `/admin/v1/clients/${client_id}`)).body.firstParty).toBe(false);
  });
});
