import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import { type ZodTypeProvider, validatorCompiler } from 'fastify-type-provider-zod';
import type { SessionDevices } from '../../account/devices.ts';
import type { Caller, SelfService } from '../../account/self-service.ts';
import type { ArtifactStore } from '../../artifacts/store.ts';
import { ACCOUNT_CLIENT_ID, ACCOUNT_CLIENT_PATHS } from '../../clients/service.ts';
import type { Config } from '../../config.ts';
import type { Enrolment, MfaService } from '../../mfa/service.ts';
import { secretEquals } from '../../lib/crypto.ts';
import { AppError } from '../../lib/errors.ts';
import type { OidcHolder } from '../../oidc/keyring.ts';
import { PROVIDER_ROUTES } from '../../oidc/provider.ts';
import type { UserService } from '../../users/service.ts';
import type { LoginThrottle } from '../../users/throttle.ts';
import { pageFor } from '../errors.ts';
import { isCrossSite } from '../origin.ts';
import type { Message, Views } from '../views.ts';
import {
  callbackQuery,
  csrfForm,
  type DONE,
  deleteForm,
  emailForm,
  emailTokenParams,
  factorParams,
  grantParams,
  identityParams,
  mfaAddForm,
  passkeyAddForm,
  overviewQuery,
  passwordForm,
  profileForm,
  sessionParams,
  signedOutQuery,
  signInQuery,
} from './schemas.ts';
import { ACCOUNT_PATH, accountReturnPath, accountSessions, type AccountSession, type SignInFailure } from './session.ts';

export interface AccountDeps {
  /** The provider in service; read per request, since a key change swaps it. */
  oidc: OidcHolder;
  services: {
    selfService: SelfService;
    devices: SessionDevices;
    users: Pick<UserService, 'findActive' | 'get'>;
    artifacts: Pick<ArtifactStore, 'create' | 'find' | 'findUnique' | 'consume' | 'destroy'>;
    /** Windowed counters shared by every instance (sign-ins started per address). */
    throttle: Pick<LoginThrottle, 'hit'>;
    mfa: MfaService;
  };
  views: Views;
  config: Config;
  csrfKey: string;
}


/** What was just done, said at the top of the account page. */
const DONE_MESSAGES: Record<(typeof DONE)[number], Message> = {
  email_change_sent: { key: 'account.done.email_change_sent' },
  name_saved: { key: 'account.done.name_saved' },
  password_changed: { key: 'account.done.password_changed' },
  session_ended: { key: 'account.done.session_ended' },
  sessions_ended: { key: 'account.done.sessions_ended' },
  app_revoked: { key: 'account.done.app_revoked' },
  unlinked: { key: 'account.done.unlinked' },
  mfa_added: { key: 'account.done.mfa_added' },
  mfa_removed: { key: 'account.done.mfa_removed' },
  passkey_added: { key: 'account.done.passkey_added' },
  passkey_removed: { key: 'account.done.passkey_removed' },
};

/** The account page's own error pages: a title and what to do, and always the way back to the account page. */
const ERROR_PAGES = {
  form_rejected: { title: { key: 'account.error.form_rejected.title' }, message: { key: 'account.error.form_rejected.message' } },
  not_found: { title: { key: 'account.error.not_found.title' }, message: { key: 'account.error.not_found.message' } },
  sign_in_expired: { title: { key: 'account.error.sign_in_expired.title' }, message: { key: 'account.error.sign_in_expired.message' } },
  sign_in_cancelled: { title: { key: 'account.error.sign_in_cancelled.title' }, message: { key: 'account.error.sign_in_cancelled.message' } },
  sign_in_failed: { title: { key: 'account.error.sign_in_failed.title' }, message: { key: 'account.error.sign_in_failed.message' } },
  malformed: { title: { key: 'account.error.malformed.title' }, message: { key: 'account.error.malformed.message' } },
  unavailable: { title: { key: 'account.error.unavailable.title' }, message: { key: 'account.error.unavailable.message' } },
  server_error: { title: { key: 'account.error.server_error.title' }, message: { key: 'account.error.server_error.message' } },
} satisfies Record<string, { title: Message; message: Message }>;

type ErrorPage = keyof typeof ERROR_PAGES;

const SIGN_IN_FAILURES: Record<SignInFailure, ErrorPage> = { expired: 'sign_in_expired', cancelled: 'sign_in_cancelled', failed: 'sign_in_failed' };

/** A form from another site, or without the token of this account session. */
const formRejected = () => new AppError(403, 'form_rejected', 'form rejected', { expose: false });

/**
 * The account page at /account: what a signed-in person can see and do with their own account
 * (the rules are in src/account/self-service.ts). It signs people in as a client of this
 * provider and keeps a session of its own (./session.ts). Every form is guarded: it must come
 * from this site, and carry the token bound to the account session; a sensitive action (the
 * password, unlinking a service, deleting the account) also needs a recent sign-in, or the
 * person is sent to sign in again and brought back to it.
 */
export async function accountRoutes(app: FastifyInstance, deps: AccountDeps) {
  const { views, config } = deps;
  const { selfService, devices, users, mfa } = deps.services;
  await app.register(formbody);
  app.setValidatorCompiler(validatorCompiler);
  const pages = app.withTypeProvider<ZodTypeProvider>();
  const sessions = accountSessions({ oidc: deps.oidc, artifacts: deps.services.artifacts, users, config, csrfKey: deps.csrfKey });

  /** A page in the person's language; `comeBack`: the language switcher may reload it. */
  const page = (req: FastifyRequest, reply: FastifyReply, status: number, template: string, data: Record<string, unknown>, comeBack = req.method === 'GET') =>
    reply
      .code(status)
      .headers(views.headers)
      .type('text/html; charset=utf-8')
      .send(views.render(template, data, { headers: req.headers, here: comeBack ? req.url.split('?')[0] : undefined }));

  const errorPage = (req: FastifyRequest, reply: FastifyReply, status: number, kind: ErrorPage) => page(req, reply, status, 'account-error', ERROR_PAGES[kind], false);

  const lang = (req: FastifyRequest) => views.lang({ headers: req.headers });

  /** Dates as the person's language writes them, in UTC (said on the page): the page runs no script to know their time zone. */
  const dates = (req: FastifyRequest) => {
    const format = new Intl.DateTimeFormat(lang(req), { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZone: 'UTC', timeZoneName: 'short' });
    return (date: Date | null) => (date ? { iso: date.toISOString(), text: format.format(date) } : null);
  };

  const redirect = (reply: FastifyReply, location: string) => reply.code(303).header('location', location).header('cache-control', 'no-store').send();

  const signInUrl = (returnTo: string, reauth = false) => `${ACCOUNT_PATH}/sign-in?${new URLSearchParams({ return: returnTo, ...(reauth ? { reauth: '1' } : {}) })}`;

  const caller = (req: FastifyRequest, session: AccountSession): Caller => ({ userId: session.userId, sessionUid: session.sessionUid, ip: req.ip, lang: lang(req) });

  /** The signed-in person; or null, once the browser was sent to sign in (and back to `returnTo`). */
  async function signedIn(req: FastifyRequest, reply: FastifyReply, returnTo: string): Promise<AccountSession | null> {
    const session = await sessions.current(req);
    if (!session) {
      if (sessions.hasCookie(req)) sessions.clear(reply);
      redirect(reply, signInUrl(returnTo));
      return null;
    }
    await devices.seen(session.sessionUid, { userAgent: req.headers['user-agent'], ip: req.ip }).catch((err: unknown) => req.log.warn({ err }, 'session last-seen not recorded'));
    return session;
  }

  /** A form's session: it must also carry the CSRF token bound to that session. */
  async function formSession(req: FastifyRequest & { body: { _csrf?: string | undefined } }, reply: FastifyReply, returnTo: string): Promise<AccountSession | null> {
    const session = await signedIn(req, reply, returnTo);
    if (!session) return null;
    const token = req.body._csrf;
    if (!token || !secretEquals(token, sessions.csrfToken(session))) throw formRejected();
    return session;
  }

  /** A sensitive action needs a recent sign-in: false once the browser was sent to sign in again (and back to `returnTo`). */
  function recent(reply: FastifyReply, session: AccountSession, returnTo: string): boolean {
    if (sessions.isRecent(session)) return true;
    redirect(reply, signInUrl(returnTo, true));
    return false;
  }

  /** Forms must come from this site (the CSRF token is checked next, with the session). */
  const sameOrigin = {
    onRequest: (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => done(isCrossSite(req.headers, config.issuerOrigin) ? formRejected() : undefined),
  };

  app.addHook('onRequest', async (req, reply) => {
    // The account cookie is Secure over https: plain http cannot carry it.
    if (config.secure && req.protocol !== 'https') {
      return reply.code(400).headers(views.headers).type('text/html; charset=utf-8').send(views.render('error', { page: 'use_https', vars: { issuer: config.issuer } }, { headers: req.headers }));
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const answer = pageFor(err);
    if (answer.internal) req.log.error({ err }, 'account page failed');
    const kind: ErrorPage = answer.status === 403 ? 'form_rejected' : answer.status === 404 ? 'not_found' : answer.status === 503 ? 'unavailable' : answer.status >= 500 ? 'server_error' : 'malformed';
    return errorPage(req, reply.headers(answer.headers), answer.status, kind);
  });

  async function overviewPage(req: FastifyRequest, reply: FastifyReply, status: number, session: AccountSession, extra: { notice?: Message | undefined; nameError?: Message; name?: string } = {}) {
    const { user, sessions: list, apps, identities } = await selfService.overview(session.userId, session.sessionUid);
    const [factors, passkeys, recoveryLeft, mayAdd, mayAddPasskey] = await Promise.all([
      mfa.factors(session.userId),
      mfa.passkeys(session.userId),
      mfa.recoveryCodesLeft(session.userId),
      mfa.mayAdd(session.userId),
      mfa.mayAddPasskey(session.userId),
    ]);
    const date = dates(req);
    return page(req, reply, status, 'account', {
      csrfToken: sessions.csrfToken(session),
      user,
      name: extra.name ?? user.name ?? '',
      nameError: extra.nameError,
      notice: extra.notice,
      sessions: list.map((s) => ({ ...s, signedInAt: date(s.signedInAt), lastSeenAt: date(s.lastSeenAt) })),
      others: list.some((s) => !s.current),
      apps: apps.map((a) => ({ ...a, grantedAt: date(a.grantedAt) })),
      identities: identities.map((i) => ({ ...i, linkedAt: date(i.linkedAt), lastSignInAt: date(i.lastSignInAt) })),
      mfa: { factors: factors.map((f) => ({ ...f, createdAt: date(f.createdAt), lastUsedAt: date(f.lastUsedAt) })), recoveryLeft, mayAdd, on: factors.length + passkeys.length > 0 },
      passkeys: { enabled: mfa.passkeysEnabled, items: passkeys.map((p) => ({ ...p, createdAt: date(p.createdAt), lastUsedAt: date(p.lastUsedAt) })), mayAdd: mayAddPasskey },
    });
  }

  // ---- signing in and out

  pages.get(`${ACCOUNT_PATH}/sign-in`, { schema: { querystring: signInQuery } }, async (req, reply) => {
    // Each start is stored until it is finished or expires: at most INTERACTIONS_PER_MINUTE per
    // client address, as for the sign-ins apps start.
    if ((await deps.services.throttle.hit(`account-sign-ins:${req.ip}`, 60)) > config.interactionsPerMinute) {
      return reply.code(429).header('retry-after', '60').headers(views.headers).type('text/html; charset=utf-8').send(views.render('error', { page: 'too_many_sign_ins' }, { headers: req.headers }));
    }
    const reauth = req.query.reauth === '1';
    // A new sign-in for the person already here names them on the sign-in page.
    const current = reauth ? await sessions.current(req) : null;
    return redirect(reply, await sessions.start(reply, { returnTo: accountReturnPath(req.query.return), reauth, loginHint: current?.email }));
  });

  pages.get(ACCOUNT_CLIENT_PATHS.callback, { schema: { querystring: callbackQuery } }, async (req, reply) => {
    reply.header('referrer-policy', 'no-referrer');
    const outcome = await sessions.complete(req, reply, req.query);
    if ('failure' in outcome) return errorPage(req, reply, outcome.failure === 'cancelled' ? 200 : 400, SIGN_IN_FAILURES[outcome.failure]);
    return redirect(reply, outcome.returnTo);
  });

  pages.post(`${ACCOUNT_PATH}/sign-out`, { ...sameOrigin, schema: { body: csrfForm } }, async (req, reply) => {
    const session = await sessions.current(req);
    if (session && !(req.body._csrf && secretEquals(req.body._csrf, sessions.csrfToken(session)))) throw formRejected();
    await sessions.end(req, reply);
    return redirect(reply, ACCOUNT_CLIENT_PATHS.signedOut);
  });

  // After signing out of the account page: an offer to sign out of this provider in this browser
  // too (RP-initiated logout), unless the person comes back from it (`state`).
  pages.get(ACCOUNT_CLIENT_PATHS.signedOut, { schema: { querystring: signedOutQuery } }, async (req, reply) => {
    const logout = new URLSearchParams({ client_id: ACCOUNT_CLIENT_ID, post_logout_redirect_uri: `${config.issuer}${ACCOUNT_CLIENT_PATHS.signedOut}`, state: 'done' });
    return page(req, reply, 200, 'account-signed-out', { logoutUrl: req.query.state ? undefined : `${PROVIDER_ROUTES.end_session}?${logout}` });
  });

  pages.get(`${ACCOUNT_PATH}/deleted`, async (req, reply) => page(req, reply, 200, 'account-deleted', {}));

  // ---- the account page and its sections

  pages.get(ACCOUNT_PATH, { schema: { querystring: overviewQuery } }, async (req, reply) => {
    const session = await signedIn(req, reply, ACCOUNT_PATH);
    if (!session) return reply;
    return overviewPage(req, reply, 200, session, { notice: req.query.done ? DONE_MESSAGES[req.query.done] : undefined });
  });

  pages.post(`${ACCOUNT_PATH}/profile`, { ...sameOrigin, schema: { body: profileForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session) return reply;
    const outcome = await selfService.rename(caller(req, session), req.body.name);
    if (outcome === 'renamed') return redirect(reply, `${ACCOUNT_PATH}?done=name_saved`);
    const nameError = outcome === 'too_long' ? { key: 'account.profile.tooLong', vars: { max: 200 } } : { key: 'account.profile.invalid' };
    return overviewPage(req, reply, 400, session, { nameError, name: req.body.name.slice(0, 1000) });
  });

  // Email change: the new address gets a link, and replaces the old one only when it is followed.
  const emailPage = (req: FastifyRequest, reply: FastifyReply, status: number, session: AccountSession, extra: { error?: Message; email?: string } = {}) =>
    page(req, reply, status, 'account-email', { csrfToken: sessions.csrfToken(session), current: session.email, email: extra.email ?? '', error: extra.error });

  pages.get(`${ACCOUNT_PATH}/email`, async (req, reply) => {
    const session = await signedIn(req, reply, `${ACCOUNT_PATH}/email`);
    if (!session || !recent(reply, session, `${ACCOUNT_PATH}/email`)) return reply;
    return emailPage(req, reply, 200, session);
  });

  pages.post(`${ACCOUNT_PATH}/email`, { ...sameOrigin, schema: { body: emailForm } }, async (req, reply) => {
    const session = await formSession(req, reply, `${ACCOUNT_PATH}/email`);
    if (!session || !recent(reply, session, `${ACCOUNT_PATH}/email`)) return reply;
    const outcome = await selfService.requestEmailChange(caller(req, session), req.body.email);
    if (outcome === 'sent') return redirect(reply, `${ACCOUNT_PATH}?done=email_change_sent`);
    if (outcome === 'throttled') reply.header('retry-after', '3600');
    return emailPage(req, reply, outcome === 'throttled' ? 429 : 400, session, { email: req.body.email.slice(0, 320), error: { key: `account.email.${outcome}` } });
  });

  // The link in the message: a button to confirm (opening the link alone changes nothing, so a
  // mail scanner following it changes nothing either). The link is its own proof; the form must
  // come from this site.
  const notice = (req: FastifyRequest, reply: FastifyReply, status: number, kind: string, vars?: Record<string, string>) => page(req, reply, status, 'notice', { page: kind, vars }, false);

  pages.get(`${ACCOUNT_PATH}/email/confirm/:token`, { schema: { params: emailTokenParams } }, async (req, reply) => {
    reply.header('referrer-policy', 'no-referrer');
    if (!(await selfService.emailChangeLive(req.params.token))) return notice(req, reply, 410, 'email_change_spent');
    return page(req, reply, 200, 'account-email-confirm', { token: req.params.token }, false);
  });

  pages.post(`${ACCOUNT_PATH}/email/confirm/:token`, { ...sameOrigin, schema: { params: emailTokenParams } }, async (req, reply) => {
    const outcome = await selfService.confirmEmailChange(req.params.token, req.ip);
    if (outcome.kind === 'changed') return notice(req, reply, 200, 'email_changed', { email: outcome.email });
    return notice(req, reply, outcome.kind === 'taken' ? 409 : 410, outcome.kind === 'taken' ? 'email_taken' : 'email_change_spent');
  });

  const passwordPage = async (req: FastifyRequest, reply: FastifyReply, status: number, session: AccountSession, extra: { error?: Message; field?: 'current' | 'password' } = {}) =>
    page(req, reply, status, 'account-password', {
      csrfToken: sessions.csrfToken(session),
      hasPassword: (await users.get(session.userId)).hasPassword,
      email: session.email,
      error: extra.error,
      field: extra.field,
    });

  pages.get(`${ACCOUNT_PATH}/password`, async (req, reply) => {
    const session = await signedIn(req, reply, `${ACCOUNT_PATH}/password`);
    if (!session || !recent(reply, session, `${ACCOUNT_PATH}/password`)) return reply;
    return passwordPage(req, reply, 200, session);
  });

  pages.post(`${ACCOUNT_PATH}/password`, { ...sameOrigin, schema: { body: passwordForm } }, async (req, reply) => {
    const session = await formSession(req, reply, `${ACCOUNT_PATH}/password`);
    if (!session || !recent(reply, session, `${ACCOUNT_PATH}/password`)) return reply;
    const outcome = await selfService.changePassword(caller(req, session), { current: req.body.current, next: req.body.password });
    switch (outcome.kind) {
      case 'changed':
        return redirect(reply, `${ACCOUNT_PATH}?done=password_changed`);
      case 'wrong_current':
        return passwordPage(req, reply, 401, session, { error: { key: 'account.password.wrongCurrent' }, field: 'current' });
      case 'throttled':
        reply.header('retry-after', String(outcome.wait));
        return passwordPage(req, reply, 429, session, { error: { key: 'login.throttled', vars: { count: Math.ceil(outcome.wait / 60) } }, field: 'current' });
      case 'weak':
        return passwordPage(req, reply, 400, session, { error: { key: `password.${outcome.problem}`, vars: 'min' in outcome ? { min: outcome.min } : 'max' in outcome ? { max: outcome.max } : {} }, field: 'password' });
    }
  });

  pages.post(`${ACCOUNT_PATH}/sessions/sign-out-others`, { ...sameOrigin, schema: { body: csrfForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session) return reply;
    await selfService.signOutOthers(caller(req, session));
    return redirect(reply, `${ACCOUNT_PATH}?done=sessions_ended`);
  });

  pages.post(`${ACCOUNT_PATH}/sessions/:handle/sign-out`, { ...sameOrigin, schema: { params: sessionParams, body: csrfForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session) return reply;
    await selfService.signOutSession(caller(req, session), req.params.handle);
    return redirect(reply, `${ACCOUNT_PATH}?done=session_ended`);
  });

  pages.post(`${ACCOUNT_PATH}/apps/:grantId/revoke`, { ...sameOrigin, schema: { params: grantParams, body: csrfForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session) return reply;
    await selfService.revokeApp(caller(req, session), req.params.grantId);
    return redirect(reply, `${ACCOUNT_PATH}?done=app_revoked`);
  });

  const unlinkPath = (identityId: string) => `${ACCOUNT_PATH}/linked/${encodeURIComponent(identityId)}/unlink`;

  const unlinkPage = async (req: FastifyRequest, reply: FastifyReply, status: number, session: AccountSession, identityId: string, error?: Message) =>
    page(req, reply, status, 'account-unlink', { csrfToken: sessions.csrfToken(session), identity: await selfService.identity(session.userId, identityId), action: unlinkPath(identityId), error });

  pages.get(`${ACCOUNT_PATH}/linked/:identityId/unlink`, { schema: { params: identityParams } }, async (req, reply) => {
    const back = unlinkPath(req.params.identityId);
    const session = await signedIn(req, reply, back);
    if (!session || !recent(reply, session, back)) return reply;
    return unlinkPage(req, reply, 200, session, req.params.identityId);
  });

  pages.post(`${ACCOUNT_PATH}/linked/:identityId/unlink`, { ...sameOrigin, schema: { params: identityParams, body: csrfForm } }, async (req, reply) => {
    const back = unlinkPath(req.params.identityId);
    const session = await formSession(req, reply, back);
    if (!session || !recent(reply, session, back)) return reply;
    const outcome = await selfService.unlink(caller(req, session), req.params.identityId);
    if (outcome === 'unlinked') return redirect(reply, `${ACCOUNT_PATH}?done=unlinked`);
    return unlinkPage(req, reply, 409, session, req.params.identityId, { key: 'account.unlink.lastMethod' });
  });

  pages.post(`${ACCOUNT_PATH}/data`, { ...sameOrigin, schema: { body: csrfForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session) return reply;
    const [data, factors] = await Promise.all([selfService.exportData(session.userId), mfa.overview(session.userId)]);
    // Second factors by kind and name, never a secret; recovery codes only as a count.
    const secondFactors = { items: factors.items.map(({ type, name, createdAt, lastUsedAt }) => ({ type, name, createdAt, lastUsedAt })), recoveryCodesLeft: factors.recoveryCodesLeft };
    return reply
      .code(200)
      .header('content-disposition', 'attachment; filename="account-data.json"')
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .type('application/json; charset=utf-8')
      .send(JSON.stringify({ ...data, secondFactors }, null, 2));
  });

  // ---- two-step verification: authenticator apps and recovery codes (the rules: src/mfa/service.ts)

  const TWO_STEP_PATH = `${ACCOUNT_PATH}/two-step`;

  const addPage = (req: FastifyRequest, reply: FastifyReply, status: number, session: AccountSession, enrolment: Enrolment, extra: { name?: string; error?: Message } = {}) =>
    page(req, reply, status, 'account-two-step-add', {
      csrfToken: sessions.csrfToken(session),
      factorId: enrolment.factorId,
      qr: enrolment.qr,
      // Groups of four, as people type it.
      secret: enrolment.secret.match(/.{1,4}/g)!.join(' '),
      name: extra.name ?? '',
      error: extra.error,
    });

  /** The recovery codes, shown this once (the page is not cached, and nothing shows them again). */
  const codesPage = (req: FastifyRequest, reply: FastifyReply, codes: string[]) => page(req, reply, 200, 'account-recovery-codes', { codes }, false);

  pages.get(`${TWO_STEP_PATH}/add`, async (req, reply) => {
    const session = await signedIn(req, reply, `${TWO_STEP_PATH}/add`);
    if (!session || !recent(reply, session, `${TWO_STEP_PATH}/add`)) return reply;
    if (!(await mfa.mayAdd(session.userId))) return redirect(reply, ACCOUNT_PATH);
    return addPage(req, reply, 200, session, await mfa.start(session.userId, session.email));
  });

  pages.post(`${TWO_STEP_PATH}/add`, { ...sameOrigin, schema: { body: mfaAddForm } }, async (req, reply) => {
    const session = await formSession(req, reply, `${TWO_STEP_PATH}/add`);
    if (!session || !recent(reply, session, `${TWO_STEP_PATH}/add`)) return reply;
    const { factorId, name, code } = req.body;
    const outcome = await mfa.confirm({ actor: `user:${session.userId}`, ip: req.ip }, session.userId, { factorId, name, code });
    if (outcome.kind === 'confirmed') return outcome.recoveryCodes ? codesPage(req, reply, outcome.recoveryCodes) : redirect(reply, `${ACCOUNT_PATH}?done=mfa_added`);
    const enrolment = await mfa.pending(session.userId, factorId, session.email);
    if (!enrolment) return redirect(reply, `${TWO_STEP_PATH}/add`);
    return addPage(req, reply, 400, session, enrolment, { name: name.slice(0, 100), error: { key: 'account.mfa.wrongCode' } });
  });

  pages.post(`${TWO_STEP_PATH}/:factorId/remove`, { ...sameOrigin, schema: { params: factorParams, body: csrfForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session || !recent(reply, session, ACCOUNT_PATH)) return reply;
    await mfa.remove({ actor: `user:${session.userId}`, ip: req.ip }, session.userId, req.params.factorId);
    return redirect(reply, `${ACCOUNT_PATH}?done=mfa_removed`);
  });

  pages.post(`${TWO_STEP_PATH}/recovery-codes`, { ...sameOrigin, schema: { body: csrfForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session || !recent(reply, session, ACCOUNT_PATH)) return reply;
    return codesPage(req, reply, await mfa.regenerate({ actor: `user:${session.userId}`, ip: req.ip }, session.userId));
  });

  // ---- passkeys (the rules: src/mfa/service.ts; the ceremonies: src/mfa/passkeys.ts)

  const PASSKEYS_PATH = `${ACCOUNT_PATH}/passkeys`;

  /** The form that creates a passkey: the browser's options, made for this person; its answer comes back with the name. */
  const passkeyPage = async (req: FastifyRequest, reply: FastifyReply, status: number, session: AccountSession, extra: { name?: string; error?: Message } = {}) => {
    const user = await deps.services.users.get(session.userId);
    return page(req, reply, status, 'account-passkey-add', {
      csrfToken: sessions.csrfToken(session),
      passkey: await mfa.passkeyCreation({ id: user.id, email: user.email, name: user.name }),
      name: extra.name ?? '',
      error: extra.error,
    });
  };

  pages.get(`${PASSKEYS_PATH}/add`, async (req, reply) => {
    const session = await signedIn(req, reply, `${PASSKEYS_PATH}/add`);
    if (!session || !recent(reply, session, `${PASSKEYS_PATH}/add`)) return reply;
    if (!(await mfa.mayAddPasskey(session.userId))) return redirect(reply, ACCOUNT_PATH);
    return passkeyPage(req, reply, 200, session);
  });

  pages.post(`${PASSKEYS_PATH}/add`, { ...sameOrigin, schema: { body: passkeyAddForm } }, async (req, reply) => {
    const session = await formSession(req, reply, `${PASSKEYS_PATH}/add`);
    if (!session || !recent(reply, session, `${PASSKEYS_PATH}/add`)) return reply;
    if (!(await mfa.mayAddPasskey(session.userId))) return redirect(reply, ACCOUNT_PATH);
    const { name, response } = req.body;
    const outcome = await mfa.addPasskey({ actor: `user:${session.userId}`, ip: req.ip }, session.userId, { name, response });
    if (outcome.kind === 'added') return outcome.recoveryCodes ? codesPage(req, reply, outcome.recoveryCodes) : redirect(reply, `${ACCOUNT_PATH}?done=passkey_added`);
    return passkeyPage(req, reply, 400, session, { name: name.slice(0, 100), error: { key: 'account.passkeys.failed' } });
  });

  pages.post(`${PASSKEYS_PATH}/:factorId/remove`, { ...sameOrigin, schema: { params: factorParams, body: csrfForm } }, async (req, reply) => {
    const session = await formSession(req, reply, ACCOUNT_PATH);
    if (!session || !recent(reply, session, ACCOUNT_PATH)) return reply;
    await mfa.removePasskey({ actor: `user:${session.userId}`, ip: req.ip }, session.userId, req.params.factorId);
    return redirect(reply, `${ACCOUNT_PATH}?done=passkey_removed`);
  });

  const deletePage = (req: FastifyRequest, reply: FastifyReply, status: number, session: AccountSession, error?: Message) =>
    page(req, reply, status, 'account-delete', { csrfToken: sessions.csrfToken(session), email: session.email, error });

  pages.get(`${ACCOUNT_PATH}/delete`, async (req, reply) => {
    const session = await signedIn(req, reply, `${ACCOUNT_PATH}/delete`);
    if (!session || !recent(reply, session, `${ACCOUNT_PATH}/delete`)) return reply;
    return deletePage(req, reply, 200, session);
  });

  pages.post(`${ACCOUNT_PATH}/delete`, { ...sameOrigin, schema: { body: deleteForm } }, async (req, reply) => {
    const session = await formSession(req, reply, `${ACCOUNT_PATH}/delete`);
    if (!session || !recent(reply, session, `${ACCOUNT_PATH}/delete`)) return reply;
    const outcome = await selfService.deleteAccount(caller(req, session), req.body.email);
    if (outcome === 'mismatch') return deletePage(req, reply, 400, session, { key: 'account.delete.mismatch' });
    await sessions.end(req, reply);
    return redirect(reply, `${ACCOUNT_PATH}/deleted`);
  });
}
