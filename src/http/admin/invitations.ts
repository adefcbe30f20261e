import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { invitationSchema } from '../../account/invitations.ts';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { described, errorResponses, example, idParam, json, timestamp } from './schemas.ts';

const invitationView = z
  .object({
    email: example(z.string(), 'bob@example.com'),
    name: example(z.string().nullable(), 'Bob').describe('the name the invitation suggests (the person may change it)'),
    expiresAt: timestamp.describe('when the link stops working (7 days)'),
  })
  .meta({ id: 'Invitation' });

/** Invitations, and verification email an admin sends (the rules: src/account/invitations.ts, verification.ts). */
export const invitationRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { invitations, verification } }) => {
  app.post('/invitations', {
    schema: {
      tags: ['users'],
      summary: 'Invite someone to create an account',
      description:
        'Emails the address a single-use link (7 days) to choose a name and a password; the account is created with its address verified. Allowed whatever SIGNUP says. A new invitation to the same address replaces the earlier one; an address that already has an account is refused (409).',
      body: example(invitationSchema, { email: 'bob@example.com', name: 'Bob' }),
      response: { 201: described(invitationView, 'Created: the invitation (its email is queued)'), ...errorResponses({ 409: 'Conflict: the address already has an account' }) },
    },
    handler: async (req, reply) => reply.code(201).send(json(await invitations.invite(req.body, adminActor(req)))),
  });

  app.post('/users/:id/verification-email', {
    schema: {
      tags: ['users'],
      summary: 'Email the user a new link and code to verify their address',
      description: 'The link and code work once, for EMAIL_VERIFICATION_TTL seconds, and replace earlier ones. 409 when the address is already verified (to mark it verified without email: PATCH /users/{id} with emailVerified).',
      params: idParam,
      response: {
        202: described(z.null(), 'Accepted: the email is queued'),
        ...errorResponses({ 404: 'No such user', 409: 'Conflict: the address is already verified' }),
      },
    },
    handler: async (req, reply) => {
      await verification.sendByAdmin(req.params.id, adminActor(req));
      return reply.code(202).send(null);
    },
  });
};
