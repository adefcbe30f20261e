import type { FastifyReply } from 'fastify';
import { MODEL } from '../../artifacts/store.ts';
import { sha256 } from '../../lib/crypto.ts';
import { INTERACTION_PATH } from '../../oidc/provider.ts';
import type { InteractionDeps, InteractionKit, Message, PagesApp } from './kit.ts';
import { forgotForm, interactionParams, resetForm, resetParams } from './schemas.ts';

const RESET_PATH = '/password/reset';

/**
 * "Forgot password?": the request form inside a sign-in, and the page its emailed link opens
 * (outside any sign-in, so that it works in another browser). The rules are in
 * src/account/password-reset.ts.
 */
export function passwordRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { passwordReset, artifacts } = deps.services;

  const forgotPage = (reply: FastifyReply, status: number, interaction: { uid: string; params: Record<string, unknown> }, extra: { email?: unknown; error?: Message } = {}) =>
    kit.page(reply, status, 'forgot', { uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), email: extra.email ?? interaction.params.login_hint ?? '', error: extra.error }, interaction);

  app.get(`${INTERACTION_PATH}/:uid/forgot`, { schema: { params: interactionParams } }, async (req, reply) => forgotPage(reply, 200, await kit.details(req, reply, 'login')));

  app.post(`${INTERACTION_PATH}/:uid/forgot`, { ...kit.formGuards, schema: { params: interactionParams, body: forgotForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    const email = req.body.email.trim();
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) return forgotPage(reply, 400, interaction, { email, error: { key: 'forgot.invalidEmail' } });
    const accepted = await passwordReset.request({ email, lang: kit.lang(req, interaction), ip: req.ip, returnTo: `${INTERACTION_PATH}/${interaction.uid}` });
    if (!accepted) return kit.page(reply.header('retry-after', '900'), 429, 'error', { page: 'too_many_resets', retry: `${INTERACTION_PATH}/${interaction.uid}` }, interaction);
    // The same page whether or not the address has an account.
    return kit.page(reply, 200, 'forgot-sent', { uid: interaction.uid, email }, interaction);
  });

  /** The form's CSRF token is bound to the link it was opened with. */
  const resetPage = (reply: FastifyReply, status: number, token: string, error?: Message) =>
    kit.page(reply, status, 'reset', { token, csrfToken: reply.generateCsrf({ userInfo: resetCsrfSubject(token) }), error });

  async function spentPage(reply: FastifyReply, token: string) {
    const known = await passwordReset.check(token);
    return kit.page(reply, 410, 'error', { page: known === 'unknown' ? 'reset_unknown' : 'reset_spent' });
  }

  app.get(`${RESET_PATH}/:token`, { schema: { params: resetParams } }, async (req, reply) => {
    reply.header('referrer-policy', 'no-referrer');
    if ((await passwordReset.check(req.params.token)) !== 'live') return spentPage(reply, req.params.token);
    return resetPage(reply, 200, req.params.token);
  });

  app.post(`${RESET_PATH}/:token`, { ...kit.formGuards, schema: { params: resetParams, body: resetForm } }, async (req, reply) => {
    const { token } = req.params;
    const outcome = await passwordReset.complete({ token, password: req.body.password, ip: req.ip });
    switch (outcome.kind) {
      case 'invalid':
        return spentPage(reply, token);
      case 'weak':
        return resetPage(reply, 400, token, { key: `password.${outcome.problem}`, vars: 'min' in outcome ? { min: outcome.min } : 'max' in outcome ? { max: outcome.max } : {} });
      case 'done': {
        // Back to the sign-in it was asked from, if it is still waiting; else a page that says it is done.
        const uid = outcome.returnTo?.slice(`${INTERACTION_PATH}/`.length);
        const waiting = uid ? await artifacts.find(MODEL.interaction, uid) : null;
        if (uid && waiting?.expiresAt && waiting.expiresAt.getTime() > Date.now()) return reply.code(303).header('location', `${INTERACTION_PATH}/${uid}?notice=password_changed`).send();
        return kit.page(reply, 200, 'reset-done', {});
      }
    }
  });
}

/** What the reset form's CSRF token is bound to: the link (its hash). */
export const resetCsrfSubject = (token: string) => `reset:${sha256(token)}`;
