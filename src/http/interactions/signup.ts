import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SignUpProblems } from '../../account/signup.ts';
import { VERIFY_EMAIL_PATH } from '../../account/verification.ts';
import { asksToCreate, INTERACTION_PATH } from '../../oidc/provider.ts';
import type { Interaction, InteractionDeps, InteractionKit, Message, PagesApp } from './kit.ts';
import { csrfForm, interactionParams, signupForm, verifyCodeForm } from './schemas.ts';

/**
 * A sign-in waiting for its person to prove their address, kept in the interaction (on the
 * server; the browser holds only the interaction's id). `accountId` null: the address typed at
 * sign-up already had an account, and the page only looks the same: nothing it takes completes.
 */
interface Awaiting {
  accountId: string | null;
  email: string;
  amr: string[];
  /** The account's password when it was proven (a stamp): a new password voids the wait. */
  stamp?: string;
}

/**
 * The cookie that tells the verification link's page, in the browser that signed up, which
 * sign-in waits for it (signed; sent only to that page): following the link there goes straight
 * on to the app.
 */
export const verifyCookie = (secure: boolean) => (secure ? '__Secure-idp_verify' : 'idp_verify');

const awaiting = (interaction: Interaction): Awaiting | undefined => {
  const state = (interaction.result as { verifyEmail?: Awaiting } | undefined)?.verifyEmail;
  return state && typeof state.email === 'string' ? state : undefined;
};

/** The words for what is wrong with a sign-up or invitation form, field by field. */
export function fieldErrors(problems: SignUpProblems, domains: readonly string[]): Record<string, Message> {
  const errors: Record<string, Message> = {};
  if (problems.email === 'invalid') errors.email = { key: 'signup.invalidEmail' };
  if (problems.email === 'domain') errors.email = { key: 'signup.domain', vars: { domains: domains.join(', ') } };
  if (problems.name === 'missing') errors.name = { key: 'signup.nameMissing' };
  if (problems.name === 'too_long') errors.name = { key: 'signup.nameTooLong', vars: { max: 200 } };
  if (problems.password) {
    const p = problems.password;
    errors.password = { key: `password.${p.problem}`, vars: p.problem === 'too_short' ? { min: p.min } : p.problem === 'too_long' ? { max: p.max } : {} };
  }
  if (problems.terms) errors.terms = { key: 'signup.termsRequired' };
  return errors;
}

/**
 * Signing up inside a sign-in (SIGNUP=open: a link on the login page, or the app's
 * prompt=create), and the "check your email" step a password sign-in waits at while its address
 * is unverified (REQUIRE_VERIFIED_EMAIL): type the emailed code, or follow its link (here or
 * elsewhere) and continue. The rules are in src/account/signup.ts and verification.ts.
 */
export function signUpRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { signUp, verification, signIn } = deps.services;
  const { config } = deps;
  const policy = config.signup;
  const cookieName = verifyCookie(config.secure);
  const here = (interaction: { uid: string }, page = '') => `${INTERACTION_PATH}/${interaction.uid}${page}`;
  const back = (reply: FastifyReply, location: string) => reply.code(303).header('location', location).send();

  /** The sign-in waits for the address (in this browser: the cookie), then shows its own page again. */
  async function wait(interaction: Interaction, reply: FastifyReply, state: Awaiting) {
    interaction.result = { verifyEmail: state };
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    reply.header('set-cookie', app.serializeCookie(cookieName, app.signCookie(interaction.uid), { path: VERIFY_EMAIL_PATH, httpOnly: true, sameSite: 'lax', secure: config.secure, maxAge: config.ttl.interaction }));
    return back(reply, here(interaction));
  }

  const signUpPage = async (reply: FastifyReply, status: number, interaction: Interaction, form: { email?: string; name?: string; accepted?: boolean; errors?: Record<string, Message> } = {}, at?: string) =>
    kit.page(
      reply,
      status,
      'signup',
      {
        uid: interaction.uid,
        csrfToken: reply.generateCsrf({ userInfo: interaction.uid }),
        clientName: await kit.clientName(interaction.params.client_id),
        email: form.email ?? interaction.params.login_hint ?? '',
        name: form.name ?? '',
        errors: form.errors ?? {},
        accepted: form.accepted ?? false,
        minLength: config.passwords.minLength,
        terms: Boolean(config.brand.termsUrl),
      },
      interaction,
      at,
    );

  const verifyPage = (reply: FastifyReply, status: number, interaction: Interaction, state: Awaiting, extra: { error?: Message; notice?: Message } = {}) =>
    kit.page(reply, status, 'verify', { uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), email: state.email, ...extra }, interaction);

  const closedPage = (reply: FastifyReply, interaction: Interaction) => kit.page(reply, 404, 'error', { page: 'signup_closed', retry: here(interaction, '/login') }, interaction);

  /**
   * Where a waiting sign-in stands: still waiting, verified (it may complete), or stale: the
   * account changed since its password was proven (a new password, another address, disabled or
   * deleted), so nothing completes it.
   */
  async function standing(state: Awaiting): Promise<'waiting' | 'verified' | 'stale'> {
    if (!state.accountId) return 'waiting';
    const user = await verification.account(state.accountId);
    if (!user || user.disabled || user.email !== state.email || user.passwordStamp !== state.stamp) return 'stale';
    return user.emailVerified ? 'verified' : 'waiting';
  }

  /** A stale wait ends: the sign-in shows its login page, to sign in again. */
  async function startOver(interaction: Interaction, reply: FastifyReply) {
    interaction.result = undefined;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return kit.loginPage(reply, 400, interaction, { error: { key: 'verify.stale' } });
  }

  // A sign-in's own page: the "check your email" step while it waits (or, verified meanwhile, on
  // to the app); the sign-up page when the app asked for it (prompt=create) and sign-up is open.
  kit.steps.opening.push(async (interaction, reply) => {
    const state = awaiting(interaction);
    if (state) {
      const now = await standing(state);
      if (now === 'stale') await startOver(interaction, reply);
      else if (now === 'verified') await kit.signedIn(interaction, reply, state.accountId!, state.amr);
      else await verifyPage(reply, 200, interaction, state);
      return true;
    }
    if (!signUp.offered || !asksToCreate(interaction.params)) return false;
    await signUpPage(reply, 200, interaction);
    return true;
  });

  // A password sign-in (the login form, a sign-up) of an unverified address waits for it, when
  // REQUIRE_VERIFIED_EMAIL; a new code and link are sent (at most one a minute).
  kit.steps.beforeSignIn.push(async (interaction, reply, accountId, amr) => {
    if (!policy.requireVerifiedEmail || amr.includes('fed')) return false;
    const user = await verification.account(accountId);
    if (!user || user.emailVerified) return false;
    const req = reply.request;
    await verification.send(user.id, kit.lang(req, interaction), { actor: `user:${user.id}`, ip: req.ip }, interaction.uid);
    await wait(interaction, reply, { accountId, email: user.email, amr, stamp: user.passwordStamp });
    return true;
  });

  app.get(`${INTERACTION_PATH}/:uid/signup`, { schema: { params: interactionParams } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    if (!signUp.offered) return closedPage(reply, interaction);
    if (awaiting(interaction)) return back(reply, here(interaction));
    return signUpPage(reply, 200, interaction, {}, here(interaction, '/signup'));
  });

  // The login page of a sign-in that opened on the sign-up page.
  app.get(`${INTERACTION_PATH}/:uid/login`, { schema: { params: interactionParams } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    if (awaiting(interaction)) return back(reply, here(interaction));
    return kit.loginPage(reply, 200, interaction);
  });

  app.post(`${INTERACTION_PATH}/:uid/signup`, { ...kit.formGuards, schema: { params: interactionParams, body: signupForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    if (awaiting(interaction)) return back(reply, here(interaction));
    const { email, name, password, terms } = req.body;
    const outcome = await signUp.signUp({ email, name, password, acceptedTerms: terms, ip: req.ip, lang: kit.lang(req, interaction), clientId: String(interaction.params.client_id), interaction: interaction.uid });
    switch (outcome.kind) {
      case 'closed':
        return closedPage(reply, interaction);
      case 'invalid':
        return signUpPage(reply, 400, interaction, { email: outcome.email, name: outcome.name, accepted: terms, errors: fieldErrors(outcome.problems, policy.emailDomains) });
      case 'throttled':
        return kit.page(reply.header('retry-after', '3600'), 429, 'error', { page: 'too_many_signups', retry: here(interaction, '/login') }, interaction);
      case 'created':
        return kit.signedIn(interaction, reply, outcome.userId, ['pwd']);
      case 'exists':
        // The same page as for a new account; the owner was told by email.
        return wait(interaction, reply, { accountId: null, email: outcome.email, amr: ['pwd'] });
    }
  });

  /** The waiting sign-in a form of the "check your email" page belongs to, and where it stands; null when nothing waits. */
  async function waiting(req: FastifyRequest & { params: { uid: string } }, reply: FastifyReply) {
    const interaction = await kit.details(req, reply, 'login');
    const state = awaiting(interaction);
    return state ? { interaction, state, now: await standing(state) } : null;
  }

  // The code from the email. Wrong codes count as failed sign-ins of the address (throttled as
  // those are), and against the message (five, then it takes no more).
  app.post(`${INTERACTION_PATH}/:uid/verify`, { ...kit.formGuards, schema: { params: interactionParams, body: verifyCodeForm } }, async (req, reply) => {
    const found = await waiting(req, reply);
    if (!found) return back(reply, here(req.params));
    const { interaction, state, now } = found;
    if (now === 'stale') return startOver(interaction, reply);
    if (now === 'verified') return kit.signedIn(interaction, reply, state.accountId!, state.amr);
    const code = req.body.code.replace(/[\s-]/g, '');
    const attempt = await signIn.throttled({ ip: req.ip, email: state.email }, async () => {
      const ok = state.accountId !== null && /^\d{6}$/.test(code) && (await verification.useCode(state.accountId, code, req.ip));
      return { ok, value: ok };
    });
    if (attempt.kind === 'throttled') return verifyPage(reply, 429, interaction, state, { error: { key: 'login.throttled', vars: { count: kit.waitMinutes(reply, attempt.wait) } } });
    if (!attempt.value) return verifyPage(reply, 400, interaction, state, { error: { key: 'verify.wrongCode' } });
    return kit.signedIn(interaction, reply, state.accountId!, state.amr);
  });

  // "I've confirmed my address, continue": the link was followed elsewhere.
  app.post(`${INTERACTION_PATH}/:uid/verify/continue`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    const found = await waiting(req, reply);
    if (!found) return back(reply, here(req.params));
    const { interaction, state, now } = found;
    if (now === 'stale') return startOver(interaction, reply);
    if (now === 'waiting') return verifyPage(reply, 400, interaction, state, { error: { key: 'verify.notYet' } });
    return kit.signedIn(interaction, reply, state.accountId!, state.amr);
  });

  // Another message, at most one a minute (and a few an hour) per address, whoever asks.
  app.post(`${INTERACTION_PATH}/:uid/verify/resend`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    const found = await waiting(req, reply);
    if (!found) return back(reply, here(req.params));
    const { interaction, state, now } = found;
    if (now === 'stale') return startOver(interaction, reply);
    const sent = state.accountId ? await verification.send(state.accountId, kit.lang(req, interaction), { actor: 'anonymous', ip: req.ip }, interaction.uid) : (await verification.mayMail(state.email)) ? 'sent' : 'throttled';
    if (sent === 'verified') return kit.signedIn(interaction, reply, state.accountId!, state.amr);
    if (sent === 'throttled') return verifyPage(reply.header('retry-after', '60'), 429, interaction, state, { error: { key: 'verify.resendWait' } });
    return verifyPage(reply, 200, interaction, state, { notice: { key: 'verify.sent', vars: { email: state.email } } });
  });

  // Another account: the sign-in stops waiting and shows its login page.
  app.post(`${INTERACTION_PATH}/:uid/verify/cancel`, { ...kit.formGuards, schema: { params: interactionParams, body: csrfForm } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    if (awaiting(interaction)) {
      interaction.result = undefined;
      await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    }
    return back(reply, here(interaction, '/login'));
  });
}
