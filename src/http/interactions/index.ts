import type { FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import csrf from '@fastify/csrf-protection';
import { type ZodTypeProvider, validatorCompiler } from 'fastify-type-provider-zod';
import { FederationRejected } from '../../federation/service.ts';
import { INTERACTION_PATH } from '../../oidc/provider.ts';
import { pageFor } from '../errors.ts';
import { consentRoutes } from './consent.ts';
import { federationRoutes } from './federation.ts';
import { interactionKit, type InteractionDeps, type Params } from './kit.ts';
import { loginRoutes } from './login.ts';
import { passwordRoutes, resetCsrfSubject } from './password.ts';
import { emailLinkCsrfSubjectOf, emailLinkRoutes } from './email-links.ts';
import { secondFactorRoutes } from './second-factor.ts';
import { signUpRoutes } from './signup.ts';

export type { InteractionDeps } from './kit.ts';

/**
 * The login, consent, cancel and account-linking pages. Their state is the provider's
 * Interaction and Session, both stored in the database; the browser only holds their ids in
 * HttpOnly cookies. Every form is guarded (same origin, CSRF token bound to its interaction).
 */
export async function interactionRoutes(app: FastifyInstance, deps: InteractionDeps) {
  const { secure } = deps.config;
  await app.register(formbody);
  await app.register(csrf, {
    cookieKey: secure ? '__Host-csrf' : 'csrf',
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'lax', secure, signed: true },
    // Tokens are bound to the interaction they were issued for.
    csrfOpts: { userInfo: true, hmacKey: deps.csrfKey },
    // A form of a sign-in is bound to it; the password reset form, to its link; the other forms
    // an emailed link opens (verification, invitation), to their address and link.
    getUserInfo: (req) => {
      const params = req.params as Partial<Params> & { token?: string };
      return params.uid ?? (params.token !== undefined ? resetCsrfSubject(params.token) : emailLinkCsrfSubjectOf(req));
    },
    getToken: (req) => {
      const token = (req.body as Record<string, unknown> | undefined)?._csrf;
      return typeof token === 'string' ? token : undefined;
    },
  });

  app.setValidatorCompiler(validatorCompiler);
  const pages = app.withTypeProvider<ZodTypeProvider>();
  const kit = interactionKit(app, deps);
  app.setErrorHandler((err, req, reply) => {
    const answer = pageFor(err);
    if (answer.internal) req.log.error({ err }, 'interaction failed');
    // After a refused upstream answer, the sign-in page is still there to go back to.
    const uid = (req.params as Partial<Params>).uid;
    const retry = err instanceof FederationRejected && uid && uid !== 'callback' ? { retry: `${INTERACTION_PATH}/${uid}` } : {};
    return kit.page(reply.headers(answer.headers), answer.status, 'error', { page: answer.page, ...retry });
  });

  consentRoutes(pages, kit, deps);
  loginRoutes(pages, kit, deps);
  federationRoutes(pages, kit, deps);
  passwordRoutes(pages, kit, deps);
  // Before sign-up's: a sign-in waiting for its second factor opens on that step's page.
  secondFactorRoutes(pages, kit, deps);
  signUpRoutes(pages, kit, deps);
  emailLinkRoutes(pages, kit, deps);
}
