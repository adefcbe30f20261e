import type { FastifyReply, FastifyRequest } from 'fastify';
import { ACR, essentialAcrUnmet, INTERACTION_PATH, NO_SECOND_FACTOR, STEP_UP_REASONS } from '../../oidc/provider.ts';
import type { Enrolment } from '../../mfa/service.ts';
import type { Interaction, InteractionDeps, InteractionKit, InteractionRequest, Message, PagesApp } from './kit.ts';
import { csrfForm, interactionParams, passkeyAddForm, passkeyForm, secondFactorForm, secondFactorMethodParams, totpAddForm } from './schemas.ts';

/**
 * A sign-in whose password was right, waiting for the person's second factor. Kept in the
 * interaction (on the server; the browser holds only the interaction's id), so that nothing but
 * a right code finishes it: the provider still sees no login.
 */
interface Awaiting {
  accountId: string;
  amr: string[];
  /** The person must use a second factor (src/mfa/policy.ts) and has none: they add one first. */
  setup?: boolean;
  /** What the factor added during this sign-in proved; its recovery codes were shown, the sign-in goes on. */
  proved?: string[];
}

const awaiting = (interaction: Interaction): Awaiting | undefined => {
  const state = (interaction.result as { secondFactor?: Awaiting } | undefined)?.secondFactor;
  return state && typeof state.accountId === 'string' ? state : undefined;
};

type Method = 'totp' | 'passkey' | 'recovery';
/** Each way of giving the second factor has its page, under the sign-in's two-step path. */
const PAGES: Record<Method, string> = { totp: '/two-step/app', passkey: '/two-step/passkey', recovery: '/two-step/recovery' };

/**
 * The second step of a password sign-in, for people with a second factor: a passkey, a code from
 * an authenticator app, or one of their recovery codes (the rules are in src/mfa/service.ts).
 * Wrong codes and passkeys that do not verify count as failed sign-ins of the account and of the
 * address, throttled as passwords are. Federated sign-ins are not asked, unless a policy requires
 * a second factor (src/mfa/policy.ts: everyone, the client, a role of the person).
 *
 * Enrolment: a person whom a policy requires to use a second factor and who has none adds one
 * (a passkey, or an authenticator app) inside the sign-in, sees their recovery codes once, and
 * only then does the app get a code.
 *
 * Step-up: when an app asks for the second factor (`acr_values`) or requires it (an essential
 * `acr` claim) of a browser already signed in with a password alone, the sign-in opens on the
 * code page, for the session's account, without the password form. A person with no second
 * factor goes on as they are when it was only asked for; when it was required, the app gets
 * `unmet_authentication_requirements` and never a code.
 */
export function secondFactorRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { mfa, mfaPolicy, signIn, users } = deps.services;
  const here = (interaction: { uid: string }, page = '') => `${INTERACTION_PATH}/${interaction.uid}${page}`;
  const back = (reply: FastifyReply, location: string) => reply.code(303).header('location', location).send();
  const save = (interaction: Interaction) => interaction.save(interaction.exp - Math.floor(Date.now() / 1000));

  // ---- a remembered browser (MFA_REMEMBER_DAYS): skips the second factor for the person who gave
  // it there, until it expires, their password changes, or their second factors change (one added
  // or removed, or all reset by an administrator). A signed, HttpOnly cookie; off by default.

  const { secure, mfaRememberDays } = deps.config;
  const REMEMBER_COOKIE = secure ? '__Host-idp_mfa' : 'idp_mfa';

  /** What a remembered browser is bound to for this person now: their id, password and second factors. */
  async function rememberBinding(accountId: string): Promise<string | null> {
    const key = await users.currentDeviceKey(accountId);
    return key ? `${key}.${await mfa.stamp(accountId)}` : null;
  }

  /** What the second factor proved when this browser was remembered for this person, if its cookie is theirs, unexpired and not stale. */
  async function remembered(req: FastifyRequest, accountId: string): Promise<string | null> {
    const raw = mfaRememberDays ? req.cookies[REMEMBER_COOKIE] : undefined;
    const unsigned = raw ? req.unsignCookie(raw) : undefined;
    if (!unsigned?.valid || !unsigned.value) return null;
    const [binding, expires, proved] = unsigned.value.split('|');
    if (!binding?.startsWith(`${accountId}.`) || !(Number(expires) > Date.now() / 1000) || !proved) return null;
    return binding === (await rememberBinding(accountId)) ? proved : null;
  }

  async function remember(reply: FastifyReply, accountId: string, proved: string) {
    const binding = await rememberBinding(accountId);
    if (!binding) return;
    const maxAge = mfaRememberDays * 24 * 3600;
    reply.setCookie(REMEMBER_COOKIE, `${binding}|${Math.floor(Date.now() / 1000) + maxAge}|${proved}`, { signed: true, httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge });
    await deps.services.audit.record({ actor: `user:${accountId}`, ip: reply.request.ip }, 'mfa.browser_remembered', accountId, { days: mfaRememberDays });
  }

  /** The page for `method` (or, without one, the person's first: a passkey, else their app), with links to the others they have. */
  async function codePage(reply: FastifyReply, status: number, interaction: Interaction, state: Awaiting, wanted?: Method, error?: Message) {
    const methods = await mfa.methods(state.accountId);
    const method: Method = wanted === 'recovery' || (wanted && methods[wanted]) ? wanted : methods.passkey ? 'passkey' : 'totp';
    const others = (['passkey', 'totp', 'recovery'] as const).filter((m) => m !== method && (m === 'recovery' || methods[m])).map((m) => ({ method: m, href: here(interaction, PAGES[m]) }));
    const passkey = method === 'passkey' ? await mfa.passkeyRequest(interaction.uid, state.accountId) : null;
    return kit.page(reply, status, 'second-factor', { uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), method, passkey, others, error, rememberDays: mfaRememberDays }, interaction, here(interaction, PAGES[method]));
  }

  /** Holds the sign-in for the second factor, or for adding one, and opens that page. */
  async function hold(interaction: Interaction, state: Awaiting) {
    interaction.result = { secondFactor: state };
    await save(interaction);
  }

  kit.steps.beforeSignIn.push(async (interaction, reply, accountId, amr) => {
    if (amr.includes('mfa')) return false;
    const [has, mustUse] = await Promise.all([mfa.required(accountId), mfaPolicy.requires(accountId, String(interaction.params.client_id))]);
    if (!mustUse && (!has || amr.includes('fed'))) return false;
    const proved = has ? await remembered(reply.request, accountId) : null;
    if (proved) {
      await kit.signedIn(interaction, reply, accountId, [...amr, proved, 'mfa']);
      return true;
    }
    await hold(interaction, { accountId, amr, setup: !has });
    await back(reply, here(interaction));
    return true;
  });

  kit.steps.opening.push(async (interaction, reply) => {
    const state = awaiting(interaction);
    if (!state) return stepUp(interaction, reply);
    if (state.proved) await finishSetup(interaction, reply, state);
    else if (state.setup) await setupPage(reply, 200, interaction, state);
    else await codePage(reply, 200, interaction, state);
    return true;
  });

  /**
   * A session without a second factor that the app asks (or requires) to give one, or that a
   * policy requires to: that step alone (or adding one), not the password again.
   */
  async function stepUp(interaction: Interaction, reply: FastifyReply): Promise<boolean> {
    const { session, prompt } = interaction;
    const accountId = session?.accountId;
    if (!accountId || prompt.name !== 'login' || !prompt.reasons.every((reason) => STEP_UP_REASONS.includes(reason))) return false;
    const policy = prompt.reasons.includes('second_factor_required');
    // Upstream sign-ins are stepped up only for a policy; a session with its second factor never is.
    if (session.acr !== ACR.password && !(policy && session.acr === ACR.federated)) return false;
    // An acr the second factor would not meet either (federated, say): the login page.
    if (essentialAcrUnmet(interaction.params, ACR.mfa)) return false;
    if (!(await users.findActive(accountId))) return false;
    const has = await mfa.required(accountId);
    if (has || policy) {
      const state: Awaiting = { accountId, amr: session.amr ?? ['pwd'], setup: !has };
      await hold(interaction, state);
      await (has ? codePage(reply, 200, interaction, state) : setupPage(reply, 200, interaction, state));
      return true;
    }
    const required = essentialAcrUnmet(interaction.params, ACR.password);
    await kit.finish(interaction, reply, required ? { error: 'unmet_authentication_requirements', error_description: 'a second factor is required' } : { [NO_SECOND_FACTOR]: true });
    return true;
  }

  app.get(`${INTERACTION_PATH}/:uid/two-step/:method`, { schema: { params: secondFactorMethodParams } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    const state = awaiting(interaction);
    if (!state || state.setup) return back(reply, here(interaction));
    return codePage(reply, 200, interaction, state, req.params.method === 'app' ? 'totp' : req.params.method);
  });

  const WRONG: Record<Method, string> = { totp: 'twoStep.wrongCode', passkey: 'twoStep.passkeyFailed', recovery: 'twoStep.wrongRecoveryCode' };

  /**
   * A code or a passkey's answer for the waiting sign-in: throttled per account and address,
   * then checked; a right one finishes the sign-in, with what it proved added to the password's `pwd`.
   */
  async function check(req: InteractionRequest & { body: { code?: string; response?: string; remember?: boolean } }, reply: FastifyReply, method: Method) {
    const interaction = await kit.details(req, reply, 'login');
    const state = awaiting(interaction);
    if (!state || state.setup) return back(reply, here(interaction));
    const { accountId } = state;
    const attempt = await signIn.secondFactor({ ip: req.ip, userId: accountId }, async () => {
      if (!(await users.findActive(accountId))) return { ok: false, value: null };
      let proved: string[] | null;
      if (method === 'passkey') proved = (await mfa.verifyPasskey(interaction.uid, req.body.response ?? '', accountId))?.amr ?? null;
      else if (method === 'totp') proved = (await mfa.verifyTotp(accountId, req.body.code ?? '')) ? ['otp'] : null;
      else proved = (await mfa.useRecoveryCode({ actor: `user:${accountId}`, ip: req.ip }, accountId, req.body.code ?? '', kit.lang(req, interaction))) ? ['otp'] : null;
      return { ok: proved !== null, value: proved };
    });
    if (attempt.kind === 'throttled') return codePage(reply, 429, interaction, state, method, { key: 'login.throttled', vars: { count: kit.waitMinutes(reply, attempt.wait) } });
    if (!attempt.value) {
      await deps.services.audit.record({ actor: 'anonymous', ip: req.ip }, 'login.failed', accountId, { clientId: String(interaction.params.client_id), step: method });
      return codePage(reply, 401, interaction, state, method, { key: WRONG[method] });
    }
    // A recovery code is for a lost authenticator: it does not remember the browser.
    if (req.body.remember && mfaRememberDays && method !== 'recovery') await remember(reply, accountId, attempt.value[0]!);
    return kit.signedIn(interaction, reply, accountId, [...new Set([...state.amr, ...attempt.value, 'mfa'])]);
  }

  app.post(`${INTERACTION_PATH}/:uid/two-step`, { ...kit.formGuards, schema: { params: interactionParams, body: secondFactorForm } }, (req, reply) => check(req, reply, 'totp'));
  app.post(`${INTERACTION_PATH}/:uid/two-step/recovery`, { ...kit.formGuards, schema: { params: interactionParams, body: secondFactorForm } }, (req, reply) => check(req, reply, 'recovery'));
  app.post(`${INTERACTION_PATH}/:uid/two-step/passkey`, { ...kit.formGuards, schema: { params: interactionParams, body: passkeyForm } }, (req, reply) => check(req, reply, 'passkey'));

  // ---- adding a second factor inside the sign-in, when a policy requires one

  const SETUP = '/two-step/setup';

  /** The page that adds one: a passkey (where passkeys work), or an authenticator app (a new secret at every showing, unless `pending` is shown again). */
  async function setupPage(reply: FastifyReply, status: number, interaction: Interaction, state: Awaiting, extra: { pending?: Enrolment; name?: string; error?: Message } = {}) {
    const user = await users.findActive(state.accountId);
    if (!user) return kit.loginPage(reply, 401, interaction, { error: { key: 'login.wrong' } });
    const enrolment = extra.pending ?? (await mfa.start(user.id, user.email));
    return kit.page(
      reply,
      status,
      'second-factor-setup',
      {
        uid: interaction.uid,
        csrfToken: reply.generateCsrf({ userInfo: interaction.uid }),
        clientName: await kit.clientName(interaction.params.client_id),
        passkey: mfa.passkeysEnabled ? await mfa.passkeyCreation(user, `sign-in:${interaction.uid}`) : null,
        factorId: enrolment.factorId,
        qr: enrolment.qr,
        secret: enrolment.secret.match(/.{1,4}/g)!.join(' '),
        name: extra.name ?? '',
        error: extra.error,
      },
      interaction,
      here(interaction, SETUP),
    );
  }

  /** The factor is added: the recovery codes, shown this once, then the sign-in goes on. */
  async function added(reply: FastifyReply, interaction: Interaction, state: Awaiting, proved: string[], codes: string[] | null) {
    const next = { ...state, setup: false, proved };
    await hold(interaction, next);
    if (!codes) return finishSetup(interaction, reply, next);
    return kit.page(reply, 200, 'second-factor-codes', { uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), codes }, interaction, here(interaction));
  }

  const finishSetup = (interaction: Interaction, reply: FastifyReply, state: Awaiting) => kit.signedIn(interaction, reply, state.accountId, [...new Set([...state.amr, ...(state.proved ?? []), 'mfa'])]);

  /** The sign-in waiting for a factor to be added, else the address it is at. */
  async function settingUp(req: InteractionRequest, reply: FastifyReply) {
    const interaction = await kit.details(req, reply, 'login');
    const state = awaiting(interaction);
    return { interaction, state: state?.setup ? state : undefined };
  }

  app.get(`${INTERACTION_PATH}/:uid${SETUP}`, { schema: { params: interactionParams } }, async (req, reply) => {
    const { interaction, state } = await settingUp(req, reply);
    return state ? setupPage(reply, 200, interaction, state) : back(reply, here(interaction));
  });

  app.post(`${INTERACTION_PATH}/:uid${SETUP}/app`, { ...kit.formGuards, schema: { params: interactionParams, body: totpAddForm } }, async (req, reply) => {
    const { interaction, state } = await settingUp(req, reply);
    if (!state) return back(reply, here(interaction));
    const { factorId, name, code } = req.body;
    const who = { actor: `user:${state.accountId}`, ip: req.ip };
    const outcome = await mfa.confirm(who, state.accountId, { factorId, name, code }).catch(() => null);
    if (outcome?.kind === 'confirmed') return added(reply, interaction, state, ['otp'], outcome.recoveryCodes);
    const user = await users.findActive(state.accountId);
    const pending = user ? await mfa.pending(user.id, factorId, user.email) : null;
    return setupPage(reply, 400, interaction, state, { ...(pending ? { pending } : {}), name: name.slice(0, 100), error: { key: 'account.mfa.wrongCode' } });
  });

  app.post(`${INTERACTION_PATH}/:uid${SETUP}/passkey`, { ...kit.formGuards, schema: { params: interactionParams, body: passkeyAddForm } }, async (req, reply) => {
    const { interaction, state } = await settingUp(req, reply);
    if (!state) return back(reply, here(interaction));
    const outcome = await mfa.addPasskey({ actor: `user:${state.accountId}`, ip: req.ip }, state.accountId, req.body, `sign-in:${interaction.uid}`);
    if (outcome.kind === 'added') return added(reply, interaction, state, outcome.amr, outcome.recoveryCodes);
    return setupPage(reply, 400, interaction, state, { error: { key: 'account.passkeys.failed' } });
  });

  app.post(`${INTERACTION_PATH}/:uid${SETUP}/continue`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    const state = awaiting(interaction);
    return state?.proved ? finishSetup(interaction, reply, state) : back(reply, here(interaction));
  });

  // Another account: the sign-in stops waiting and shows its login page.
  app.post(`${INTERACTION_PATH}/:uid/two-step/cancel`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    if (awaiting(interaction)) {
      interaction.result = undefined;
      await save(interaction);
    }
    return back(reply, here(interaction, '/login'));
  });
}
