import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import Provider, { errors, type InteractionResults } from 'oidc-provider';
import { MODEL, type ArtifactStore } from '../../artifacts/store.ts';
import type { AuditService } from '../../audit/service.ts';
import type { ClientService } from '../../clients/service.ts';
import type { Config } from '../../config.ts';
import type { UpstreamService } from '../../federation/upstreams.ts';
import type { FederationService } from '../../federation/service.ts';
import { AppError } from '../../lib/errors.ts';
import type { Metrics } from '../../metrics.ts';
import type { OidcHolder } from '../../oidc/keyring.ts';
import { withReads } from '../../oidc/adapter.ts';
import { ACR, INTERACTION_PATH } from '../../oidc/provider.ts';
import type { PasswordReset } from '../../account/password-reset.ts';
import type { Invitations } from '../../account/invitations.ts';
import type { SignUp } from '../../account/signup.ts';
import type { EmailVerification } from '../../account/verification.ts';
import type { ResourceService } from '../../resources/service.ts';
import type { UserService } from '../../users/service.ts';
import type { SignIn } from '../../users/sign-in.ts';
import type { MfaService } from '../../mfa/service.ts';
import type { MfaPolicy } from '../../mfa/policy.ts';
import { pinToIssuer } from '../forwarded.ts';
import { isCrossSite } from '../origin.ts';
import type { Message, Views } from '../views.ts';

export interface InteractionDeps {
  /** The provider in service; read per request, since a key change swaps it. */
  oidc: OidcHolder;
  services: {
    users: UserService;
    clients: Pick<ClientService, 'isFirstParty'>;
    resources: Pick<ResourceService, 'describe'>;
    passwordReset: PasswordReset;
    signUp: SignUp;
    verification: EmailVerification;
    invitations: Invitations;
    artifacts: Pick<ArtifactStore, 'find' | 'endSession'>;
    audit: AuditService;
    upstreams: UpstreamService;
    federation: FederationService;
    signIn: SignIn;
    mfa: MfaService;
    mfaPolicy: MfaPolicy;
  };
  views: Views;
  config: Config;
  csrfKey: string;
  metrics?: Metrics;
}

/** The interaction pages' Fastify instance: route schemas are zod schemas (./schemas.ts). */
export type PagesApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

export type Params = { uid: string };
/** A request to a page of the interaction its URL names (params validated: src/http/interactions/schemas.ts). */
export type InteractionRequest = FastifyRequest & { params: Params };

/** The interaction this browser started is gone: expired, or already finished. */
const interactionExpired = () => new AppError(400, 'interaction_expired', 'interaction expired', { expose: false });
/** This browser never started the interaction the address names (another browser, a copied or altered link). */
const interactionUnknown = () => new AppError(400, 'interaction_unknown', 'interaction not started in this browser', { expose: false });
/** A form from elsewhere, or for another step of the sign-in. */
export const formRejected = () => new AppError(403, 'form_rejected', 'form rejected', { expose: false });

export type { Message };

/** What every interaction page shares: the pending interaction, its guards, its pages, and finishing it. */
export function interactionKit(app: FastifyInstance, deps: InteractionDeps) {
  const { oidc, views, config } = deps;
  const issuerUrl = new URL(config.issuer);

  /**
   * A page in the person's language: the app's ui_locales, else their choice on our pages, else
   * their browser's. The language switcher comes back to the interaction's own page (never to
   * the address it is on, which may carry an upstream's code or a form's answer), or to `here`,
   * a page of it that answers GET.
   */
  const page = (reply: FastifyReply, status: number, template: string, data: Record<string, unknown>, interaction?: { uid: string; params: Record<string, unknown> }, here = interaction ? `${INTERACTION_PATH}/${interaction.uid}` : undefined) => {
    const req = reply.request;
    const html = views.render(template, data, { headers: req.headers, uiLocales: interaction?.params.ui_locales, here });
    return reply.code(status).headers(views.headers).type('text/html; charset=utf-8').send(html);
  };

  /** The language of the pages of this sign-in, for this request (and of the email it causes). */
  const lang = (req: FastifyRequest, interaction?: { params: Record<string, unknown> }) => views.lang({ headers: req.headers, uiLocales: interaction?.params.ui_locales });

  /** The pending interaction, which must be the one this URL names and at the expected prompt. */
  async function details(req: InteractionRequest, reply: FastifyReply, prompt?: 'login' | 'consent') {
    let interaction: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      pinToIssuer(req, issuerUrl);
      // The interaction is read with its session, which the provider then checks (one query).
      interaction = await withReads(() => oidc.current.interactionDetails(req.raw, reply.raw));
    } catch (err) {
      if (err instanceof errors.SessionNotFound) throw (await expiredHere(req)) ? interactionExpired() : interactionUnknown();
      throw err;
    }
    if (interaction.uid !== req.params.uid) throw interactionUnknown();
    if (prompt && interaction.prompt.name !== prompt) throw formRejected();
    return interaction;
  }

  type Interaction = Awaited<ReturnType<typeof details>>;

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

  /**
   * Whether the interaction the address names was this browser's and is over (expired, or
   * finished): the browser still holds its cookie (the provider scopes it to the interaction's
   * path), or the stored interaction has expired and not yet been purged. Otherwise the address
   * was never this browser's: opened elsewhere, copied or altered.
   */
  async function expiredHere(req: InteractionRequest): Promise<boolean> {
    if (/(^|;)\s*(_interaction|__Secure-interaction)=/.test(req.headers.cookie ?? '')) return true;
    const stored = await deps.services.artifacts.find(MODEL.interaction, req.params.uid);
    return Boolean(stored?.expiresAt && stored.expiresAt.getTime() <= Date.now());
  }

  async function clientName(clientId: unknown) {
    const client = await oidc.current.Client.find(String(clientId));
    return client?.clientName ?? String(clientId);
  }

  /** A form must come from our own pages (and carry a valid CSRF token, checked next). */
  function checkOrigin(req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) {
    done(isCrossSite(req.headers, config.issuerOrigin) ? formRejected() : undefined);
  }

  /** The login page: email and password, and a button per enabled upstream provider. */
  async function loginPage(reply: FastifyReply, status: number, interaction: Interaction, extra: { error?: Message; notice?: Message; email?: unknown } = {}) {
    return page(
      reply,
      status,
      'login',
      {
        uid: interaction.uid,
        clientName: await clientName(interaction.params.client_id),
        csrfToken: reply.generateCsrf({ userInfo: interaction.uid }),
        email: extra.email ?? interaction.params.login_hint,
        error: extra.error,
        notice: extra.notice,
        providers: await deps.services.upstreams.buttons(),
        // Options for "Sign in with a passkey" and the browser's passkey autofill (null where passkeys do not work).
        passkey: await deps.services.mfa.passkeyRequest(interaction.uid),
        signUp: config.signup.mode === 'open',
      },
      interaction,
    );
  }

  /** Sets Retry-After; the page says how long, in minutes. */
  const waitMinutes = (reply: FastifyReply, wait: number) => {
    reply.header('retry-after', String(wait));
    return Math.ceil(wait / 60);
  };

  /**
   * Steps another module adds to every sign-in (./signup.ts: the sign-up page, proving the
   * address; ./second-factor.ts: the code after a password): `opening` may answer a sign-in's own
   * page instead of the login page; `beforeSignIn` may stop a proven identity short of the sign-in
   * (the address must be verified, or the second factor given, first). Each
   * answers the request itself and says true, or says false to let it through. (A reply is
   * thenable: awaited, it is gone, hence the boolean.)
   */
  const steps = {
    opening: [] as ((interaction: Interaction, reply: FastifyReply) => Promise<boolean>)[],
    beforeSignIn: [] as ((interaction: Interaction, reply: FastifyReply, accountId: string, amr: string[]) => Promise<boolean>)[],
  };

  /** The page a sign-in at its login prompt opens on: a step's, or the login page. */
  async function opening(interaction: Interaction, reply: FastifyReply, extra: Parameters<typeof loginPage>[3] = {}) {
    for (const step of steps.opening) if (await step(interaction, reply)) return reply;
    return loginPage(reply, 200, interaction, extra);
  }

  /** The person is signed in: back to the provider, with how (password, upstream, both; a second factor makes it mfa whatever came first), unless a step must come first. */
  async function signedIn(interaction: Interaction, reply: FastifyReply, accountId: string, amr: string[]) {
    for (const step of steps.beforeSignIn) if (await step(interaction, reply, accountId, amr)) return reply;
    return finish(interaction, reply, { login: { accountId, amr, acr: amr.includes('mfa') ? ACR.mfa : amr.includes('fed') ? ACR.federated : ACR.password } });
  }

  return { page, lang, details, finish, clientName, loginPage, opening, steps, waitMinutes, signedIn, formGuards: { onRequest: [checkOrigin], preHandler: [app.csrfProtection] } };
}

export type InteractionKit = ReturnType<typeof interactionKit>;
export type Interaction = Awaited<ReturnType<InteractionKit['details']>>;
