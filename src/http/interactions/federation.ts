import type { FastifyReply, FastifyRequest } from 'fastify';
import { FederationRejected, UpstreamUnavailable, type FederationOutcome } from '../../federation/service.ts';
import { INTERACTION_PATH } from '../../oidc/provider.ts';
import type { Interaction, InteractionDeps, InteractionKit, Message, PagesApp } from './kit.ts';
import { csrfForm, interactionParams, linkForm, upstreamCallbackParams, upstreamParams } from './schemas.ts';

/** Signing in through an upstream provider (Google, …), and linking it to an account here. */
export function federationRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { federation, audit, signIn } = deps.services;

  const upstreamDown = (reply: FastifyReply, interaction: Interaction, err: UpstreamUnavailable) =>
    kit.loginPage(reply, 503, interaction, { error: { key: 'federation.unreachable', vars: { provider: err.providerName } } });

  const linkPage = (reply: FastifyReply, status: number, interaction: Interaction, link: { linkId: string; email: string; providerName: string }, error?: Message) =>
    kit.page(reply, status, 'link', { uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), ...link, ...(error ? { error } : {}) }, interaction);

  async function outcomePage(req: FastifyRequest, reply: FastifyReply, interaction: Interaction, outcome: FederationOutcome | { kind: 'cancelled' }) {
    switch (outcome.kind) {
      case 'signed_in':
        deps.metrics?.logins.inc({ method: 'federated', result: 'succeeded' });
        await audit.record({ actor: `user:${outcome.userId}`, ip: req.ip }, 'login.succeeded', outcome.userId, { clientId: String(interaction.params.client_id), provider: outcome.providerId });
        return kit.signedIn(interaction, reply, outcome.userId, outcome.amr);
      case 'cancelled':
        return kit.loginPage(reply, 200, interaction, { error: { key: 'federation.cancelled' } });
      case 'refused':
        deps.metrics?.logins.inc({ method: 'federated', result: 'failed' });
        return kit.loginPage(reply, 403, interaction, { error: { key: `federation.refused.${outcome.reason}`, vars: { provider: outcome.providerName ?? '' } } });
      case 'link_required':
        return linkPage(reply, 200, interaction, outcome);
    }
  }

  app.post(`${INTERACTION_PATH}/:uid/federated/:provider`, { ...kit.formGuards, schema: { params: upstreamParams, body: csrfForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    try {
      return reply.redirect(await federation.start(interaction.uid, req.params.provider), 303);
    } catch (err) {
      if (err instanceof UpstreamUnavailable) return upstreamDown(reply, interaction, err);
      throw err;
    }
  });

  // The redirect URI registered at the upstream. It carries no interaction id (the upstream
  // needs one fixed URI), so it sends the browser on to the interaction that `state` names,
  // where the interaction cookie is sent and checked.
  // The query is the upstream's answer, read whole by the federation service (openid-client).
  app.get(`${INTERACTION_PATH}/callback/:provider`, { schema: { params: upstreamCallbackParams } }, async (req, reply) => {
    const query = new URLSearchParams(req.url.split('?')[1] ?? '');
    const uid = await federation.interactionFor(query.get('state') ?? '');
    if (!uid) throw new FederationRejected('unknown or expired state');
    return reply.redirect(`${INTERACTION_PATH}/${uid}/federated/${encodeURIComponent(req.params.provider)}/callback?${query}`, 303);
  });

  app.get(`${INTERACTION_PATH}/:uid/federated/:provider/callback`, { schema: { params: upstreamParams } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    const query = new URLSearchParams(req.url.split('?')[1] ?? '');
    let outcome: Awaited<ReturnType<typeof federation.complete>>;
    try {
      outcome = await federation.complete(interaction.uid, req.params.provider, query);
    } catch (err) {
      if (err instanceof UpstreamUnavailable) return upstreamDown(reply, interaction, err);
      throw err;
    }
    return outcomePage(req, reply, interaction, outcome);
  });

  // The password typed here is a sign-in attempt like any other: the same throttling applies.
  app.post(`${INTERACTION_PATH}/:uid/link`, { ...kit.formGuards, schema: { params: interactionParams, body: linkForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    const { link: linkId, password } = req.body;
    const email = await federation.linkEmail(interaction.uid, linkId);
    const attempt = await signIn.throttled({ ip: req.ip, email }, async () => {
      const outcome = await federation.link(interaction.uid, linkId, password);
      return { ok: outcome.kind !== 'wrong_password', value: outcome };
    });
    if (attempt.kind === 'throttled') {
      return kit.page(reply, 429, 'error', { page: 'too_many_attempts', vars: { count: kit.waitMinutes(reply, attempt.wait) }, retry: `${INTERACTION_PATH}/${interaction.uid}` }, interaction);
    }
    const outcome = attempt.value;
    if (outcome.kind === 'wrong_password') return linkPage(reply, 401, interaction, { linkId, email: outcome.email, providerName: outcome.providerName }, { key: 'link.wrong' });
    return outcomePage(req, reply, interaction, outcome);
  });
}
