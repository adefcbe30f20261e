import { INTERACTION_PATH } from '../../oidc/provider.ts';
import { grantConsent } from '../../oidc/consent.ts';
import { formRejected, type InteractionDeps, type InteractionKit, type PagesApp } from './kit.ts';
import { csrfForm, interactionParams } from './schemas.ts';

const OPENID_SCOPE_TEXT: Record<string, string> = {
  openid: 'Sign you in',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay signed in and access your data while you are away',
};

/** The page an interaction opens on (login or consent), and the consent and cancel forms. */
export function consentRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  app.get(`${INTERACTION_PATH}/:uid`, { schema: { params: interactionParams } }, async (req, reply) => {
    const interaction = await kit.details(req, reply);
    if (interaction.prompt.name === 'login') return kit.loginPage(reply, 200, interaction);
    if (interaction.prompt.name === 'consent') {
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
    const interaction = await kit.details(req, reply, 'consent');
    const grantId = await grantConsent(deps.oidc.current, interaction);
    return kit.finish(interaction, reply, { consent: { grantId } }, true);
  });

  app.post(`${INTERACTION_PATH}/:uid/abort`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    return kit.finish(await kit.details(req, reply), reply, { error: 'access_denied', error_description: 'The user cancelled the sign-in.' });
  });
}
