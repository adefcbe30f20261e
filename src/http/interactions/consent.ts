import type { FastifyReply, FastifyRequest } from 'fastify';
import { INTERACTION_PATH } from '../../oidc/provider.ts';
import { grantConsent } from '../../oidc/consent.ts';
import { formRejected, type Interaction, type InteractionDeps, type InteractionKit, type PagesApp } from './kit.ts';
import { csrfForm, interactionParams } from './schemas.ts';

const OPENID_SCOPE_TEXT: Record<string, string> = {
  openid: 'Sign you in',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay signed in and access your data while you are away',
};

/** The page an interaction opens on (login or consent), and the consent and cancel forms. */
export function consentRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { clients, audit } = deps.services;

  /** Records the consent (given on the page, or implied for a first-party app) and goes back to the provider. */
  async function consent(req: FastifyRequest, reply: FastifyReply, interaction: Interaction, implicit: boolean) {
    const grantId = await grantConsent(deps.oidc.current, interaction);
    const accountId = interaction.session!.accountId;
    await audit.record({ actor: `user:${accountId}`, ip: req.ip }, 'consent.granted', String(interaction.params.client_id), { grantId, implicit });
    return kit.finish(interaction, reply, { consent: { grantId } }, true);
  }

  app.get(`${INTERACTION_PATH}/:uid`, { schema: { params: interactionParams } }, async (req, reply) => {
    const interaction = await kit.details(req, reply);
    if (interaction.prompt.name === 'login') return kit.loginPage(reply, 200, interaction);
    if (interaction.prompt.name === 'consent') {
      // The operator's own app: its users are not asked (the grant is recorded all the same).
      if (await clients.isFirstParty(String(interaction.params.client_id))) return consent(req, reply, interaction, true);
      const name = await kit.clientName(interaction.params.client_id);
      const csrfToken = reply.generateCsrf({ userInfo: req.params.uid });
      const user = interaction.session?.accountId ? await deps.services.users.findActive(interaction.session.accountId) : null;
      const d = interaction.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
      const permissions = (d.missingOIDCScope ?? []).map((s) => OPENID_SCOPE_TEXT[s] ?? s);
      const apis = Object.entries(d.missingResourceScopes ?? {}).map(([identifier, scopes]) => ({ identifier, scopes }));
      return kit.page(reply, 200, 'consent', { uid: interaction.uid, clientName: name, csrfToken, permissions, apis, email: user?.email ?? '' });
    }
    throw formRejected();
  });

  app.post(`${INTERACTION_PATH}/:uid/confirm`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    return consent(req, reply, await kit.details(req, reply, 'consent'), false);
  });

  app.post(`${INTERACTION_PATH}/:uid/abort`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    return kit.finish(await kit.details(req, reply), reply, { error: 'access_denied', error_description: 'The user cancelled the sign-in.' });
  });
}
