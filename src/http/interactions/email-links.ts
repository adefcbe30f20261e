import type { FastifyReply, FastifyRequest } from 'fastify';
import { INVITATION_PATH } from '../../account/invitations.ts';
import { VERIFY_EMAIL_PATH, type LinkState } from '../../account/verification.ts';
import { MODEL } from '../../artifacts/store.ts';
import { sha256 } from '../../lib/crypto.ts';
import { INTERACTION_PATH } from '../../oidc/provider.ts';
import type { InteractionDeps, InteractionKit, Message, PagesApp } from './kit.ts';
import { csrfForm, emailLinkQuery, invitationForm } from './schemas.ts';
import { fieldErrors, verifyCookie } from './signup.ts';

const RESEND_PATH = `${VERIFY_EMAIL_PATH}/resend`;

/**
 * What the CSRF token of a form opened from an emailed link is bound to: the form's address and
 * the link (its hash), besides the browser's CSRF cookie. These pages belong to no sign-in.
 */
const emailLinkCsrfSubject = (path: string, token: string) => `link:${path}:${sha256(token)}`;

/** The subject of a posted form, from its request (the route's path and the token in its query). */
export const emailLinkCsrfSubjectOf = (req: FastifyRequest) => emailLinkCsrfSubject(req.routeOptions.url ?? '', String((req.query as { token?: unknown } | undefined)?.token ?? ''));

/**
 * The pages an emailed link opens, outside any sign-in so that they work in any browser: the
 * address verification link (a button confirms: mail scanners that fetch links confirm
 * nothing), a new link in place of a spent one, and an invitation (choose a name and password).
 * The rules are in src/account/verification.ts and invitations.ts.
 */
export function emailLinkRoutes(app: PagesApp, kit: InteractionKit, deps: InteractionDeps) {
  const { verification, invitations, artifacts } = deps.services;
  const { config } = deps;
  const cookieName = verifyCookie(config.secure);
  const csrf = (reply: FastifyReply, path: string, token: string) => reply.generateCsrf({ userInfo: emailLinkCsrfSubject(path, token) });
  const action = (path: string, token: string) => `${path}?token=${encodeURIComponent(token)}`;
  const notice = (reply: FastifyReply, status: number, page: string, vars: Record<string, string> = {}) => kit.page(reply, status, 'notice', { page, vars });
  const error = (reply: FastifyReply, status: number, page: string) => kit.page(reply, status, 'error', { page });

  /** A verification link's page, by what the link is. */
  function linkPage(reply: FastifyReply, token: string, link: LinkState) {
    switch (link.state) {
      case 'live':
        return kit.page(reply, 200, 'verify-email', { email: link.email, action: action(VERIFY_EMAIL_PATH, token), csrfToken: csrf(reply, VERIFY_EMAIL_PATH, token) });
      case 'verified':
        return notice(reply, 200, 'email_already_verified');
      case 'expired':
        return kit.page(reply, 410, 'verify-spent', { email: link.email, action: action(RESEND_PATH, token), csrfToken: csrf(reply, RESEND_PATH, token) });
      case 'unknown':
        return error(reply, 404, 'verify_unknown');
    }
  }

  app.get(VERIFY_EMAIL_PATH, { schema: { querystring: emailLinkQuery } }, async (req, reply) => linkPage(reply, req.query.token, await verification.inspect(req.query.token)));

  app.post(VERIFY_EMAIL_PATH, { ...kit.formGuards, schema: { querystring: emailLinkQuery, body: csrfForm } }, async (req, reply) => {
    const { token } = req.query;
    const done = await verification.useLink(token, req.ip);
    if (!done) return linkPage(reply, token, await verification.inspect(token));
    // The browser that signed up: straight on to its sign-in, which completes.
    const raw = req.cookies[cookieName];
    const mine = raw ? req.unsignCookie(raw) : null;
    if (done.interaction && mine?.valid && mine.value === done.interaction) {
      const stored = await artifacts.find(MODEL.interaction, done.interaction);
      if (stored?.expiresAt && stored.expiresAt.getTime() > Date.now()) return reply.code(303).header('location', `${INTERACTION_PATH}/${done.interaction}`).send();
    }
    return notice(reply, 200, 'email_verified');
  });

  // A new link in place of a spent one: to the same account, if its address is still unverified.
  app.post(RESEND_PATH, { ...kit.formGuards, schema: { querystring: emailLinkQuery, body: csrfForm } }, async (req, reply) => {
    switch (await verification.resendFor(req.query.token, kit.lang(req), req.ip)) {
      case 'sent':
        return notice(reply, 200, 'verification_sent');
      case 'verified':
        return notice(reply, 200, 'email_already_verified');
      case 'throttled':
        return error(reply.header('retry-after', '60'), 429, 'too_many_emails');
      case 'unknown':
        return error(reply, 404, 'verify_unknown');
    }
  });

  const invitationPage = (reply: FastifyReply, status: number, token: string, invitation: { email: string; name: string | null }, form: { name?: string; accepted?: boolean; errors?: Record<string, Message> } = {}) =>
    kit.page(reply, status, 'invitation', {
      email: invitation.email,
      name: form.name ?? invitation.name ?? '',
      errors: form.errors ?? {},
      accepted: form.accepted ?? false,
      action: action(INVITATION_PATH, token),
      csrfToken: csrf(reply, INVITATION_PATH, token),
      minLength: config.passwords.minLength,
      terms: Boolean(config.brand.termsUrl),
    });

  /** An invitation link that is not live: accepted, expired or replaced, or not ours. */
  async function spentInvitation(reply: FastifyReply, token: string) {
    const invitation = await invitations.inspect(token);
    if (invitation.state === 'live') return invitationPage(reply, 200, token, invitation);
    if (invitation.state === 'accepted') return notice(reply, 410, 'invitation_already_accepted');
    return invitation.state === 'expired' ? error(reply, 410, 'invitation_spent') : error(reply, 404, 'invitation_unknown');
  }

  app.get(INVITATION_PATH, { schema: { querystring: emailLinkQuery } }, async (req, reply) => spentInvitation(reply, req.query.token));

  app.post(INVITATION_PATH, { ...kit.formGuards, schema: { querystring: emailLinkQuery, body: invitationForm } }, async (req, reply) => {
    const { token } = req.query;
    const outcome = await invitations.accept({ token, name: req.body.name, password: req.body.password, acceptedTerms: req.body.terms, ip: req.ip });
    switch (outcome.kind) {
      case 'accepted':
        return notice(reply, 200, 'invitation_accepted', { email: outcome.email });
      case 'invalid': {
        const invitation = await invitations.inspect(token);
        if (invitation.state !== 'live') return spentInvitation(reply, token);
        return invitationPage(reply, 400, token, invitation, { name: outcome.name, accepted: req.body.terms, errors: fieldErrors(outcome.problems, []) });
      }
      case 'exists':
        return error(reply, 409, 'invitation_exists');
      case 'spent':
        return spentInvitation(reply, token);
    }
  });
}
