import type { FastifyReply } from 'fastify';
import { ACR, essentialAcrUnmet, INTERACTION_PATH, NO_SECOND_FACTOR, STEP_UP_REASONS } from '../../oidc/provider.ts';
import type { Interaction, InteractionDeps, InteractionKit, InteractionRequest, Message, PagesApp } from './kit.ts';
import { csrfForm, interactionParams, secondFactorForm } from './schemas.ts';

/**
 * A sign-in whose password was right, waiting for the person's second factor. Kept in the
 * interaction (on the server; the browser holds only the interaction's id), so that nothing but
 * a right code finishes it: the provider still sees no login.
 */
interface Awaiting {
  accountId: string;
  amr: string[];
}

const awaiting = (interaction: Interaction): Awaiting | undefined => {
  const state = (interaction.result as { secondFactor?: Awaiting } | undefined)?.secondFactor;
  return state && typeof state.accountId === 'string' ? state : undefined;
};

type Method = 'totp' | 'recovery';

/**
 * The second step of a password sign-in, for people with an authenticator app: a code from the
 * app, or one of their recovery codes (the rules are in src/mfa/service.ts). Wrong codes count
 * as failed sign-ins of the account and of the address, throttled as passwords are. Federated
 * sign-ins are not asked (yet).
 *
 * Step-up: when an app asks for the second factor (`acr_values`) or requires it (an essential
 * `acr` claim) of a browser already signed in with a password alone, the sign-in opens on the
 * code page, for the session's account, without the password form. A person with no second
 * factor goes on as they are when it was only asked for; when it was required, the app gets
 * `unmet_authentication_requirements` and never a code.
 */
export function secondFactorRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { mfa, signIn, users } = deps.services;
  const here = (interaction: { uid: string }, page = '') => `${INTERACTION_PATH}/${interaction.uid}${page}`;
  const back = (reply: FastifyReply, location: string) => reply.code(303).header('location', location).send();
  const save = (interaction: Interaction) => interaction.save(interaction.exp - Math.floor(Date.now() / 1000));

  const codePage = (reply: FastifyReply, status: number, interaction: Interaction, method: Method, error?: Message) =>
    kit.page(reply, status, 'second-factor', { uid: interaction.uid, csrfToken: reply.generateCsrf({ userInfo: interaction.uid }), method, error }, interaction, here(interaction, method === 'recovery' ? '/two-step/recovery' : ''));

  kit.steps.beforeSignIn.push(async (interaction, reply, accountId, amr) => {
    if (amr.includes('fed') || amr.includes('mfa') || !(await mfa.required(accountId))) return false;
    interaction.result = { secondFactor: { accountId, amr } satisfies Awaiting };
    await save(interaction);
    await back(reply, here(interaction));
    return true;
  });

  kit.steps.opening.push(async (interaction, reply) => {
    if (awaiting(interaction)) {
      await codePage(reply, 200, interaction, 'totp');
      return true;
    }
    return stepUp(interaction, reply);
  });

  /** A password-only session that the app asks (or requires) to give its second factor, and nothing else: that step alone. */
  async function stepUp(interaction: Interaction, reply: FastifyReply): Promise<boolean> {
    const { session, prompt } = interaction;
    const accountId = session?.accountId;
    if (!accountId || session.acr !== ACR.password || prompt.name !== 'login' || !prompt.reasons.every((reason) => STEP_UP_REASONS.includes(reason))) return false;
    // An acr the second factor would not meet either (federated, say): the login page.
    if (essentialAcrUnmet(interaction.params, ACR.mfa)) return false;
    if (!(await users.findActive(accountId))) return false;
    if (await mfa.required(accountId)) {
      interaction.result = { secondFactor: { accountId, amr: session.amr ?? ['pwd'] } satisfies Awaiting };
      await save(interaction);
      await codePage(reply, 200, interaction, 'totp');
      return true;
    }
    const required = essentialAcrUnmet(interaction.params, ACR.password);
    await kit.finish(interaction, reply, required ? { error: 'unmet_authentication_requirements', error_description: 'a second factor is required' } : { [NO_SECOND_FACTOR]: true });
    return true;
  }

  app.get(`${INTERACTION_PATH}/:uid/two-step/recovery`, { schema: { params: interactionParams } }, async (req, reply) => {
    const interaction = await kit.details(req, reply, 'login');
    if (!awaiting(interaction)) return back(reply, here(interaction));
    return codePage(reply, 200, interaction, 'recovery');
  });

  /** A code for the waiting sign-in: throttled per account and address, then checked; a right one finishes the sign-in. */
  async function check(req: InteractionRequest & { body: { code: string } }, reply: FastifyReply, method: Method) {
    const interaction = await kit.details(req, reply, 'login');
    const state = awaiting(interaction);
    if (!state) return back(reply, here(interaction));
    const attempt = await signIn.secondFactor({ ip: req.ip, userId: state.accountId }, async () => {
      const ok =
        (await users.findActive(state.accountId)) !== null &&
        (method === 'totp' ? await mfa.verifyTotp(state.accountId, req.body.code) : await mfa.useRecoveryCode({ actor: `user:${state.accountId}`, ip: req.ip }, state.accountId, req.body.code, kit.lang(req, interaction)));
      return { ok, value: ok };
    });
    if (attempt.kind === 'throttled') return codePage(reply, 429, interaction, method, { key: 'login.throttled', vars: { count: kit.waitMinutes(reply, attempt.wait) } });
    if (!attempt.value) {
      await deps.services.audit.record({ actor: 'anonymous', ip: req.ip }, 'login.failed', state.accountId, { clientId: String(interaction.params.client_id), step: method });
      return codePage(reply, 401, interaction, method, { key: method === 'totp' ? 'twoStep.wrongCode' : 'twoStep.wrongRecoveryCode' });
    }
    return kit.signedIn(interaction, reply, state.accountId, [...state.amr, 'otp', 'mfa']);
  }

  app.post(`${INTERACTION_PATH}/:uid/two-step`, { ...kit.formGuards, schema: { params: interactionParams, body: secondFactorForm } }, (req, reply) => check(req, reply, 'totp'));
  app.post(`${INTERACTION_PATH}/:uid/two-step/recovery`, { ...kit.formGuards, schema: { params: interactionParams, body: secondFactorForm } }, (req, reply) => check(req, reply, 'recovery'));

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
