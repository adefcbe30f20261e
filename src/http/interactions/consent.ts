import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../lib/errors.ts';
import { ADMIN_API, OIDC_SCOPES } from '../../lib/scopes.ts';
import { INTERACTION_PATH, PROVIDER_ROUTES } from '../../oidc/provider.ts';
import { withReads } from '../../oidc/adapter.ts';
import { grantConsent } from '../../oidc/consent.ts';
import { formRejected, type Interaction, type InteractionDeps, type InteractionKit, type PagesApp } from './kit.ts';
import { csrfForm, interactionParams, loginPageQuery } from './schemas.ts';

/** One line of the consent page: words of the catalogue (`key`), or the API's own description, or the bare scope name. */
interface ScopeLine {
  name: string;
  key?: string;
  description?: string;
}

/** The page an interaction opens on (login or consent), and the consent, deny and "not you" forms. */
export function consentRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { clients, audit, resources, artifacts } = deps.services;

  /** Records the consent (given on the page, or implied for a first-party app) and goes back to the provider. */
  async function consent(req: FastifyRequest, reply: FastifyReply, interaction: Interaction, implicit: boolean) {
    const grantId = await grantConsent(deps.oidc.current, interaction);
    const accountId = interaction.session!.accountId;
    await audit.record({ actor: `user:${accountId}`, ip: req.ip }, 'consent.granted', String(interaction.params.client_id), { grantId, implicit });
    return kit.finish(interaction, reply, { consent: { grantId } }, true);
  }

  /** What the app asks for, in words: OpenID Connect scopes have built-in ones, APIs' scopes the ones their admin registered. */
  async function requested(interaction: Interaction) {
    const d = interaction.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
    const permissions: ScopeLine[] = (d.missingOIDCScope ?? []).map((name) => (OIDC_SCOPES.has(name) ? { name, key: `scope.${name}` } : { name }));
    const wanted = d.missingResourceScopes ?? {};
    const described = new Map((await resources.describe(Object.keys(wanted))).map((api) => [api.identifier, api]));
    const apis = Object.entries(wanted).map(([identifier, scopes]) => {
      const api = described.get(identifier);
      const admin = identifier === ADMIN_API;
      return {
        ...(admin ? { nameKey: 'consent.adminApi' } : { name: api?.name ?? identifier }),
        scopes: scopes.map((name): ScopeLine => (admin ? { name, key: `adminScope.${name}` } : { name, ...(api?.scopeDescriptions[name] ? { description: api.scopeDescriptions[name] } : {}) })),
      };
    });
    return { permissions, apis };
  }

  app.get(`${INTERACTION_PATH}/:uid`, { schema: { params: interactionParams, querystring: loginPageQuery } }, async (req, reply) => {
    const { notice } = req.query;
    const interaction = await kit.details(req, reply).catch((err: unknown) => {
      // A new password set from a link opened in another browser than the sign-in's: say it is done.
      if (notice === 'password_changed' && err instanceof AppError && (err.code === 'interaction_unknown' || err.code === 'interaction_expired')) return null;
      throw err;
    });
    if (!interaction) return kit.page(reply, 200, 'reset-done', {});
    if (interaction.prompt.name === 'login') return kit.opening(interaction, reply, notice ? { notice: { key: `login.notice.${notice}` } } : {});
    if (interaction.prompt.name === 'consent') {
      // The operator's own app: its users are not asked (the grant is recorded all the same).
      if (await clients.isFirstParty(String(interaction.params.client_id))) return consent(req, reply, interaction, true);
      const client = await deps.oidc.current.Client.find(String(interaction.params.client_id));
      const user = interaction.session?.accountId ? await deps.services.users.findActive(interaction.session.accountId) : null;
      return kit.page(
        reply,
        200,
        'consent',
        {
          uid: interaction.uid,
          csrfToken: reply.generateCsrf({ userInfo: req.params.uid }),
          clientName: client?.clientName ?? String(interaction.params.client_id),
          // https only (checked at registration): the page links to them and shows the logo.
          logoUri: client?.logoUri,
          policyUri: client?.policyUri,
          tosUri: client?.tosUri,
          email: user?.email ?? '',
          ...(await requested(interaction)),
        },
        interaction,
      );
    }
    throw formRejected();
  });

  app.post(`${INTERACTION_PATH}/:uid/confirm`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    // The grant the consent adds to is read with the interaction.
    return withReads(async () => consent(req, reply, await kit.details(req, reply, 'consent'), false));
  });

  app.post(`${INTERACTION_PATH}/:uid/abort`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply);
    const error_description = interaction.prompt.name === 'consent' ? 'The user denied access to the application.' : 'The user cancelled the sign-in.';
    return kit.finish(interaction, reply, { error: 'access_denied', error_description });
  });

  // "Not you?": ends this browser's session and starts the same authorization request again, so
  // the person signs in with another account and the app still gets its answer.
  app.post(`${INTERACTION_PATH}/:uid/switch`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'consent');
    const session = interaction.session!;
    await artifacts.endSession(session.cookie);
    await audit.record({ actor: `user:${session.accountId}`, ip: req.ip }, 'session.ended', session.accountId, { reason: 'another_account', clientId: String(interaction.params.client_id) });
    const again = new URLSearchParams();
    for (const [name, value] of Object.entries(interaction.params)) {
      for (const v of Array.isArray(value) ? value : [value]) if (typeof v === 'string') again.append(name, v);
    }
    await interaction.destroy();
    return reply.code(303).header('location', `${PROVIDER_ROUTES.authorization}?${again}`).send();
  });
}
