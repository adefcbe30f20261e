import type { FastifyRequest } from 'fastify';
import { INTERACTION_PATH } from '../../oidc/provider.ts';
import type { InteractionDeps, InteractionKit, PagesApp } from './kit.ts';
import { interactionParams, loginForm, passkeyForm } from './schemas.ts';

/** The login form: email and password, or a passkey alone (the rules are in src/users/sign-in.ts). */
export function loginRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { secure } = deps.config;
  const DEVICE_COOKIE = secure ? '__Host-idp_device' : 'idp_device';

  /** What this browser keeps of the account it signed in to before (a signed, HttpOnly cookie), if any. */
  const deviceKey = (req: FastifyRequest): string | null => {
    const raw = req.cookies[DEVICE_COOKIE];
    if (!raw) return null;
    const unsigned = req.unsignCookie(raw);
    return unsigned.valid ? unsigned.value : null;
  };

  app.post(`${INTERACTION_PATH}/:uid/login`, { ...kit.formGuards, schema: { params: interactionParams, body: loginForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    const { email, password } = req.body;
    const outcome = await deps.services.signIn.withPassword({
      email,
      password,
      ip: req.ip,
      deviceKey: deviceKey(req),
      clientId: String(interaction.params.client_id),
    });
    deps.metrics?.logins.inc({ method: 'password', result: outcome.kind === 'signed_in' ? 'succeeded' : outcome.kind === 'wrong' ? 'failed' : 'throttled' });
    switch (outcome.kind) {
      case 'throttled':
        return kit.loginPage(reply, 429, interaction, { email, error: { key: 'login.throttled', vars: { count: kit.waitMinutes(reply, outcome.wait) } } });
      case 'wrong':
        // The same answer for an unknown email, a wrong password and a disabled account.
        return kit.loginPage(reply, 401, interaction, { email, error: { key: 'login.wrong' } });
      case 'signed_in':
        reply.header('set-cookie', app.serializeCookie(DEVICE_COOKIE, app.signCookie(deps.services.users.deviceKey(outcome.user)), { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: 365 * 24 * 3600 }));
        return kit.signedIn(interaction, reply, outcome.user.id, ['pwd']);
    }
  });

  // "Sign in with a passkey", or the browser's passkey autofill in the email field: a passkey that verified the person is the whole sign-in.
  app.post(`${INTERACTION_PATH}/:uid/passkey`, { ...kit.formGuards, schema: { params: interactionParams, body: passkeyForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    const { signIn, mfa } = deps.services;
    const outcome = await signIn.withPasskey({ ip: req.ip, clientId: String(interaction.params.client_id) }, () => mfa.verifyPasskey(interaction.uid, req.body.response));
    deps.metrics?.logins.inc({ method: 'passkey', result: outcome.kind === 'signed_in' ? 'succeeded' : outcome.kind === 'wrong' ? 'failed' : 'throttled' });
    switch (outcome.kind) {
      case 'throttled':
        return kit.loginPage(reply, 429, interaction, { error: { key: 'login.throttled', vars: { count: kit.waitMinutes(reply, outcome.wait) } } });
      case 'wrong':
        return kit.loginPage(reply, 401, interaction, { error: { key: 'login.passkeyFailed' } });
      case 'signed_in':
        // Something the person has, verified by something they know or are: two factors in one.
        return kit.signedIn(interaction, reply, outcome.userId, [...outcome.amr, 'mfa']);
    }
  });
}
