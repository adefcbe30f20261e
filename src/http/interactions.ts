import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import csrf from '@fastify/csrf-protection';
import Provider, { errors, type InteractionResults } from 'oidc-provider';
import type { OidcHolder } from '../oidc/keyring.ts';
import type { Config } from '../config.ts';
import type { AuditService } from '../audit/service.ts';
import type { ProviderService } from '../federation/providers.ts';
import type { FederationService } from '../federation/service.ts';
import type { UserService } from '../users/service.ts';
import type { LoginThrottle } from '../users/throttle.ts';
import type { Metrics } from '../metrics.ts';
import { ACR, INTERACTION_PATH } from '../oidc/provider.ts';
import { AppError } from '../lib/errors.ts';
import { FederationRejected, UpstreamUnavailable, type FederationOutcome } from '../federation/service.ts';
import type { Views } from './views.ts';
import { pageFor } from './errors.ts';
import { pinToIssuer } from './forwarded.ts';
import { isCrossSite } from './origin.ts';

export interface InteractionDeps {
  /** The provider in service; read per request, since a key change swaps it. */
  oidc: OidcHolder;
  services: { users: UserService; audit: AuditService; providers: ProviderService; federation: FederationService; throttle: LoginThrottle };
  views: Views;
  config: Config;
  csrfKey: string;
  metrics?: Metrics;
}

type Params = { uid: string };
type Req = FastifyRequest<{ Params: Params; Body: Record<string, unknown> | undefined }>;

const OPENID_SCOPE_TEXT: Record<string, string> = {
  openid: 'Sign you in',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay signed in and access your data while you are away',
};

/** The interaction is gone, or is not the one this page was for. */
const interactionExpired = () => new AppError(400, 'interaction_expired', 'interaction expired or not this one', { expose: false });
/** A form from elsewhere, or for another step of the sign-in. */
const formRejected = () => new AppError(403, 'form_rejected', 'form rejected', { expose: false });

function field(body: Req['body'], name: string, max: number): string {
  const value = body?.[name];
  return typeof value === 'string' && value.length <= max ? value : '';
}

/**
 * The login, consent and cancel pages. Their state is the provider's Interaction and Session,
 * both stored in the database; the browser only holds their ids in HttpOnly cookies.
 */
export async function interactionRoutes(app: FastifyInstance, deps: InteractionDeps) {
  const { oidc, views, config } = deps;
  const { users, audit, providers, federation, throttle } = deps.services;
  const issuerUrl = new URL(config.issuer);
  const { issuerOrigin, secure } = config;

  await app.register(formbody);
  await app.register(csrf, {
    cookieKey: secure ? '__Host-csrf' : 'csrf',
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'lax', secure, signed: true },
    // Tokens are bound to the interaction they were issued for.
    csrfOpts: { userInfo: true, hmacKey: deps.csrfKey },
    getUserInfo: (req) => (req.params as Params).uid,
    getToken: (req) => {
      const token = (req.body as Record<string, unknown> | undefined)?._csrf;
      return typeof token === 'string' ? token : undefined;
    },
  });

  const page = (reply: FastifyReply, status: number, template: string, data: Record<string, unknown>) =>
    reply.code(status).headers(views.headers).type('text/html; charset=utf-8').send(views.render(template, data));

  /** The pending interaction, which must be the one this URL names and at the expected prompt. */
  async function details(req: Req, reply: FastifyReply, prompt?: 'login' | 'consent') {
    let interaction: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      pinToIssuer(req, issuerUrl);
      interaction = await oidc.current.interactionDetails(req.raw, reply.raw);
    } catch (err) {
      if (err instanceof errors.SessionNotFound) throw interactionExpired();
      throw err;
    }
    if (interaction.uid !== req.params.uid) throw interactionExpired();
    if (prompt && interaction.prompt.name !== prompt) throw formRejected();
    return interaction;
  }

  /**
   * Records the result on the interaction this request already loaded (and checked) and sends
   * the browser back to the provider: what `interactionFinished` does, without reading the
   * interaction and its session from the database a second time.
   */
  async function finish(interaction: Interaction, reply: FastifyReply, result: InteractionResults, merge = false) {
    interaction.result = merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return reply.code(303).header('location', interaction.returnTo).send();
  }

  async function clientName(clientId: unknown) {
    const client = await oidc.current.Client.find(String(clientId));
    return client?.clientName ?? String(clientId);
  }

  /** A form must come from our own pages (and carry a valid CSRF token, checked next). */
  function checkOrigin(req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) {
    done(isCrossSite(req.headers, issuerOrigin) ? formRejected() : undefined);
  }
  const formGuards = { onRequest: [checkOrigin], preHandler: [app.csrfProtection] };

  type Interaction = Awaited<ReturnType<typeof details>>;

  /** The login page: email and password, and a button per enabled upstream provider. */
  async function loginPage(reply: FastifyReply, status: number, interaction: Interaction, extra: { error?: string; email?: unknown } = {}) {
    return page(reply, status, 'login', {
      uid: interaction.uid,
      clientName: await clientName(interaction.params.client_id),
      csrfToken: reply.generateCsrf({ userInfo: interaction.uid }),
      email: extra.email ?? interaction.params.login_hint,
      error: extra.error,
      providers: await providers.buttons(),
    });
  }

  const tooManyAttempts = (reply: FastifyReply, wait: number) => {
    reply.header('retry-after', String(wait));
    return `Too many failed sign-in attempts. Try again in ${Math.ceil(wait / 60)} minute${wait > 60 ? 's' : ''}.`;
  };

  const upstreamDown = (reply: FastifyReply, interaction: Interaction, err: UpstreamUnavailable) =>
    loginPage(reply, 503, interaction, { error: `${err.message} right now. Sign in with your password, or try again later.` });

  const signIn = (interaction: Interaction, reply: FastifyReply, accountId: string, amr: string[]) =>
    finish(interaction, reply, { login: { accountId, amr, acr: amr.includes('fed') ? ACR.federated : ACR.password } });

  app.setErrorHandler((err, req, reply) => {
    const answer = pageFor(err);
    if (answer.internal) req.log.error({ err }, 'interaction failed');
    // After a refused upstream answer, the sign-in page is still there to go back to.
    const uid = (req.params as Partial<Params>).uid;
    const retry = err instanceof FederationRejected && uid && uid !== 'callback' ? { retry: `${INTERACTION_PATH}/${uid}` } : {};
    return page(reply.headers(answer.headers), answer.status, 'error', { title: answer.title, message: answer.message, ...retry });
  });

  app.get<{ Params: Params }>(`${INTERACTION_PATH}/:uid`, async (req, reply) => {
    const interaction = await details(req as Req, reply);
    if (interaction.prompt.name === 'login') return loginPage(reply, 200, interaction);
    if (interaction.prompt.name === 'consent') {
      const name = await clientName(interaction.params.client_id);
      const csrfToken = reply.generateCsrf({ userInfo: req.params.uid });
      const user = interaction.session?.accountId ? await users.findActive(interaction.session.accountId) : null;
      const d = interaction.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
      const permissions = (d.missingOIDCScope ?? []).map((s) => OPENID_SCOPE_TEXT[s] ?? s);
      const apis = Object.entries(d.missingResourceScopes ?? {}).map(([identifier, scopes]) => ({ identifier, scopes }));
      return page(reply, 200, 'consent', { uid: interaction.uid, clientName: name, csrfToken, permissions, apis, email: user?.email ?? '' });
    }
    throw formRejected();
  });

  const DEVICE_COOKIE = secure ? '__Host-idp_device' : 'idp_device';

  /** The account this browser signed in to before (a signed, HttpOnly cookie), if any. */
  const trustedDeviceUser = (req: Req): string | null => {
    const raw = req.cookies[DEVICE_COOKIE];
    if (!raw) return null;
    const unsigned = req.unsignCookie(raw);
    return unsigned.valid ? unsigned.value : null;
  };

  app.post<{ Params: Params }>(`${INTERACTION_PATH}/:uid/login`, formGuards, async (request, reply) => {
    const req = request as Req;
    const interaction = await details(req, reply, 'login');
    const email = field(req.body, 'email', 320);
    const who = { actor: 'anonymous', ip: req.ip };

    // Throttling: the address, and the account unless this browser signed in to it before, so
    // that an attacker's failures cannot lock the owner out of their own devices.
    const device = trustedDeviceUser(req);
    const trusted = device !== null && device === (await users.idForEmail(email));
    const attempt = await throttle.begin({ ip: req.ip, ...(trusted ? {} : { account: await throttle.accountKey(email) }) }, who);
    if (!('finish' in attempt)) {
      deps.metrics?.logins.inc({ method: 'password', result: 'throttled' });
      return loginPage(reply, 429, interaction, { email, error: tooManyAttempts(reply, attempt.wait) });
    }

    const user = await users.authenticate(email, field(req.body, 'password', 4096));
    await attempt.finish(user !== null);
    deps.metrics?.logins.inc({ method: 'password', result: user ? 'succeeded' : 'failed' });
    const clientId = String(interaction.params.client_id);
    if (!user) {
      // What was typed into the email field is never recorded: it may be a password. An unknown
      // identifier is recorded as a keyed hash, so that repeated attempts can still be correlated.
      const knownId = await users.idForEmail(email);
      await audit.record(who, 'login.failed', knownId, { clientId, ...(knownId ? {} : { identifier: await throttle.accountKey(email) }) });
      // The same answer for an unknown email, a wrong password and a disabled account.
      return loginPage(reply, 401, interaction, { email, error: 'Incorrect email or password.' });
    }
    await audit.record({ actor: `user:${user.id}`, ip: req.ip }, 'login.succeeded', user.id, { clientId });
    reply.header('set-cookie', app.serializeCookie(DEVICE_COOKIE, app.signCookie(user.id), { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: 365 * 24 * 3600 }));
    return signIn(interaction, reply, user.id, ['pwd']);
  });

  // ---- Sign in with an upstream provider (Google, …)

  type FedParams = Params & { provider: string };

  app.post<{ Params: FedParams }>(`${INTERACTION_PATH}/:uid/federated/:provider`, formGuards, async (request, reply) => {
    const req = request as unknown as Req;
    const interaction = await details(req, reply, 'login');
    try {
      return reply.redirect(await federation.start(interaction.uid, request.params.provider), 303);
    } catch (err) {
      if (err instanceof UpstreamUnavailable) return upstreamDown(reply, interaction, err);
      throw err;
    }
  });

  // The redirect URI registered at the upstream. It carries no interaction id (the upstream
  // needs one fixed URI), so it sends the browser on to the interaction that `state` names,
  // where the interaction cookie is sent and checked.
  app.get<{ Params: { provider: string }; Querystring: Record<string, string> }>(`${INTERACTION_PATH}/callback/:provider`, async (req, reply) => {
    const query = new URLSearchParams(req.url.split('?')[1] ?? '');
    const uid = await federation.interactionFor(query.get('state') ?? '');
    if (!uid) throw new FederationRejected('unknown or expired state');
    return reply.redirect(`${INTERACTION_PATH}/${uid}/federated/${encodeURIComponent(req.params.provider)}/callback?${query}`, 303);
  });

  app.get<{ Params: FedParams }>(`${INTERACTION_PATH}/:uid/federated/:provider/callback`, async (request, reply) => {
    const req = request as unknown as Req;
    const interaction = await details(req, reply, 'login');
    const query = new URLSearchParams(request.url.split('?')[1] ?? '');
    let outcome: Awaited<ReturnType<typeof federation.complete>>;
    try {
      outcome = await federation.complete(interaction.uid, request.params.provider, query);
    } catch (err) {
      if (err instanceof UpstreamUnavailable) return upstreamDown(reply, interaction, err);
      throw err;
    }
    return federationOutcome(req, reply, interaction, outcome);
  });

  app.post<{ Params: Params }>(`${INTERACTION_PATH}/:uid/link`, formGuards, async (request, reply) => {
    const req = request as Req;
    const interaction = await details(req, reply, 'login');
    const linkId = field(req.body, 'link', 200);
    // The password typed here is a sign-in attempt like any other: the same throttling applies.
    const email = await federation.linkEmail(interaction.uid, linkId);
    const attempt = await throttle.begin({ ip: req.ip, ...(email ? { account: await throttle.accountKey(email) } : {}) }, { actor: 'anonymous', ip: req.ip });
    if (!('finish' in attempt)) {
      return page(reply, 429, 'error', { title: 'Too many attempts', message: tooManyAttempts(reply, attempt.wait), retry: `${INTERACTION_PATH}/${interaction.uid}` });
    }
    let outcome: Awaited<ReturnType<typeof federation.link>>;
    try {
      outcome = await federation.link(interaction.uid, linkId, field(req.body, 'password', 4096));
    } catch (err) {
      await attempt.finish(false);
      throw err;
    }
    await attempt.finish(outcome.kind !== 'wrong_password');
    if (outcome.kind === 'wrong_password') {
      return page(reply, 401, 'link', {
        uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), linkId,
        email: outcome.email, providerName: outcome.providerName, error: 'Incorrect password.',
      });
    }
    return federationOutcome(req, reply, interaction, outcome);
  });

  async function federationOutcome(req: Req, reply: FastifyReply, interaction: Interaction, outcome: FederationOutcome | { kind: 'cancelled' }) {
    switch (outcome.kind) {
      case 'signed_in':
        deps.metrics?.logins.inc({ method: 'federated', result: 'succeeded' });
        await audit.record({ actor: `user:${outcome.userId}`, ip: req.ip }, 'login.succeeded', outcome.userId, { clientId: String(interaction.params.client_id), provider: outcome.providerId });
        return signIn(interaction, reply, outcome.userId, outcome.amr);
      case 'cancelled':
        return loginPage(reply, 200, interaction, { error: 'Sign-in with the other service was cancelled. Choose another way to sign in.' });
      case 'refused':
        deps.metrics?.logins.inc({ method: 'federated', result: 'failed' });
        return loginPage(reply, 403, interaction, { error: outcome.message });
      case 'link_required':
        return page(reply, 200, 'link', {
          uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), linkId: outcome.linkId,
          email: outcome.email, providerName: outcome.providerName,
        });
    }
  }

  app.post<{ Params: Params }>(`${INTERACTION_PATH}/:uid/confirm`, formGuards, async (request, reply) => {
    const req = request as Req;
    const interaction = await details(req, reply, 'consent');
    const { prompt, params, session, grantId } = interaction;
    const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const grant = (grantId ? await oidc.current.Grant.find(grantId) : undefined) ?? new oidc.current.Grant({ accountId: session!.accountId, clientId: String(params.client_id) });
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    return finish(interaction, reply, { consent: { grantId: await grant.save() } }, true);
  });

  app.post<{ Params: Params }>(`${INTERACTION_PATH}/:uid/abort`, formGuards, async (request, reply) => {
    const req = request as Req;
    return finish(await details(req, reply), reply, { error: 'access_denied', error_description: 'The user cancelled the sign-in.' });
  });
}
