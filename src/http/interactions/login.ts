import type { FastifyInstance } from 'fastify';
import { INTERACTION_PATH } from '../../oidc/provider.ts';
import { field, type InteractionDeps, type InteractionKit, type Params, type Req } from './kit.ts';

/** The login form: email and password (the rules are in src/users/sign-in.ts). */
export function loginRoutes(app: FastifyInstance, kit: InteractionKit, deps: InteractionDeps) {
  const { secure } = deps.config;
  const DEVICE_COOKIE = secure ? '__Host-idp_device' : 'idp_device';

  /** The account this browser signed in to before (a signed, HttpOnly cookie), if any. */
  const deviceUser = (req: Req): string | null => {
    const raw = req.cookies[DEVICE_COOKIE];
    if (!raw) return null;
    const unsigned = req.unsignCookie(raw);
    return unsigned.valid ? unsigned.value : null;
  };

  app.post<{ Params: Params }>(`${INTERACTION_PATH}/:uid/login`, kit.formGuards, async (request, reply) => {
    const req = request as Req;
    const interaction = await kit.details(req, reply, 'login');
    const email = field(req.body, 'email', 320);
    const outcome = await deps.services.signIn.withPassword({
      email,
      password: field(req.body, 'password', 4096),
      ip: req.ip,
      deviceUserId: deviceUser(req),
      clientId: String(interaction.params.client_id),
    });
    deps.metrics?.logins.inc({ method: 'password', result: outcome.kind === 'signed_in' ? 'succeeded' : outcome.kind === 'wrong' ? 'failed' : 'throttled' });
    switch (outcome.kind) {
      case 'throttled':
        return kit.loginPage(reply, 429, interaction, { email, error: kit.tooManyAttempts(reply, outcome.wait) });
      case 'wrong':
        // The same answer for an unknown email, a wrong password and a disabled account.
        return kit.loginPage(reply, 401, interaction, { email, error: 'Incorrect email or password.' });
      case 'signed_in':
        reply.header('set-cookie', app.serializeCookie(DEVICE_COOKIE, app.signCookie(outcome.user.id), { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: 365 * 24 * 3600 }));
        return kit.signedIn(interaction, reply, outcome.user.id, ['pwd']);
    }
  });
}
