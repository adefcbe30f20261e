import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AdminServices } from './deps.ts';
import { createUserSchema, updateUserSchema } from '../../users/service.ts';
import { adminActor } from './auth.ts';
import { listOf } from '../../lib/lists.ts';
import { all, count, described, errorResponses, example, factorsSchema, grantSchema, identitySchema, idParam, json, page, pageQuery, userSchema } from './schemas.ts';

const tags = ['users'];
const errors = errorResponses({ 404: 'No such user' });
const deleted = described(z.null(), 'Deleted');
const revoked = (words: string) => described(z.object({ revoked: example(count, 2) }), words);

export const userRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { users, federation, passwordReset, mfa } }) => {
  app.post('/users', {
    schema: {
      tags,
      summary: 'Create a user',
      body: example(createUserSchema, { email: 'alice@example.com', name: 'Alice' }),
      response: { 201: described(userSchema, 'Created: the user'), ...errorResponses({ 409: 'Conflict: a user with this email exists' }) },
    },
    handler: async (req, reply) => reply.code(201).send(json(await users.create(req.body, adminActor(req)))),
  });

  app.get('/users', {
    config: { scope: 'admin:read' },
    schema: {
      tags,
      summary: 'List users',
      querystring: z.object({ q: z.string().max(320).optional().describe('part of the email or name'), ...pageQuery }),
      response: { 200: described(page(userSchema), 'A page of users'), ...errorResponses({}) },
    },
    handler: async (req) => json({ ...(await users.list(req.query)), limit: req.query.limit, offset: req.query.offset }),
  });

  app.get('/users/:id', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'Get a user', params: idParam, response: { 200: described(userSchema, 'The user'), ...errors } },
    handler: async (req) => json(await users.get(req.params.id)),
  });

  app.patch('/users/:id', {
    schema: {
      tags,
      summary: 'Update a user (name, email, emailVerified, attributes)',
      description: 'Fields left out keep their value. `attributes` replaces the whole object: a JSON object of at most 4096 bytes, nested at most 5 levels.',
      params: idParam,
      body: example(updateUserSchema, { name: 'Alice Liddell' }),
      response: { 200: described(userSchema, 'The user, updated'), ...errorResponses({ 404: 'No such user', 409: 'Conflict: another user has this email' }) },
    },
    handler: async (req) => json(await users.update(req.params.id, req.body, adminActor(req))),
  });

  app.post('/users/:id/disable', {
    schema: { tags, summary: 'Disable a user, ending their sessions and tokens', params: idParam, response: { 200: described(userSchema, 'The user, disabled'), ...errors } },
    handler: async (req) => json(await users.setDisabled(req.params.id, true, adminActor(req))),
  });

  app.post('/users/:id/enable', {
    schema: { tags, summary: 'Enable a user', params: idParam, response: { 200: described(userSchema, 'The user, enabled'), ...errors } },
    handler: async (req) => json(await users.setDisabled(req.params.id, false, adminActor(req))),
  });

  app.delete('/users/:id', {
    schema: { tags, summary: 'Delete a user, with their sessions, grants and tokens', params: idParam, response: { 204: deleted, ...errors } },
    handler: async (req, reply) => {
      await users.delete(req.params.id, adminActor(req));
      return reply.code(204).send(null);
    },
  });

  app.put('/users/:id/password', {
    schema: {
      tags,
      summary: 'Set a user’s password (argon2id); signs them out everywhere',
      params: idParam,
      // No example: a password from the docs, sent as is, would be one anybody can read.
      body: z.object({ password: z.string() }).strict(),
      response: { 204: described(z.null(), 'Set: the user is signed out everywhere'), ...errors },
    },
    handler: async (req, reply) => {
      await users.setPassword(req.params.id, req.body.password, adminActor(req));
      return reply.code(204).send(null);
    },
  });

  app.post('/users/:id/password-reset', {
    schema: {
      tags,
      summary: 'Email the user a single-use link to choose a new password',
      description: 'The link works once, for PASSWORD_RESET_TTL seconds; the password it sets ends every session and refresh token of the user.',
      params: idParam,
      response: { 202: described(z.null(), 'Accepted: the email is queued'), ...errors },
    },
    handler: async (req, reply) => {
      await passwordReset.sendByAdmin(req.params.id, adminActor(req));
      return reply.code(202).send(null);
    },
  });

  app.get('/users/:id/grants', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'List the clients that hold the user’s consent, with which scopes', params: idParam, response: { 200: described(all(grantSchema), 'The user’s grants'), ...errors } },
    handler: async (req) => json(listOf(await users.listGrants(req.params.id))),
  });

  app.delete('/users/:id/grants/:grantId', {
    schema: {
      tags,
      summary: 'Revoke one grant and its tokens',
      params: idParam.extend({ grantId: z.string().min(1).max(200) }),
      response: { 204: described(z.null(), 'Revoked'), ...errorResponses({ 404: 'No such user, or no such grant of theirs' }) },
    },
    handler: async (req, reply) => {
      await users.revokeGrant(req.params.id, req.params.grantId, adminActor(req));
      return reply.code(204).send(null);
    },
  });

  app.delete('/users/:id/grants', {
    schema: { tags, summary: 'Revoke all of the user’s grants and tokens', params: idParam, response: { 200: revoked('How many grants were revoked'), ...errors } },
    handler: async (req) => ({ revoked: await users.revokeAllGrants(req.params.id, adminActor(req)) }),
  });

  app.delete('/users/:id/sessions', {
    schema: { tags, summary: 'Sign the user out of every browser session', params: idParam, response: { 200: revoked('How many sessions were ended'), ...errors } },
    handler: async (req) => ({ revoked: await users.revokeSessions(req.params.id, adminActor(req)) }),
  });

  app.get('/users/:id/identities', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'List the upstream accounts (Google, …) linked to the user', params: idParam, response: { 200: described(all(identitySchema), 'The user’s linked accounts'), ...errors } },
    handler: async (req) => json(listOf(await federation.identities(req.params.id))),
  });

  app.delete('/users/:id/identities/:identityId', {
    schema: {
      tags,
      summary: 'Unlink an upstream account, unless it is the user’s last way to sign in (409)',
      params: idParam.extend({ identityId: z.string().min(1).max(200) }),
      response: {
        204: described(z.null(), 'Unlinked'),
        ...errorResponses({ 404: 'No such user, or no such linked account of theirs', 409: 'Conflict: it is the user’s only way to sign in' }),
      },
    },
    handler: async (req, reply) => {
      await federation.unlink(req.params.id, req.params.identityId, adminActor(req));
      return reply.code(204).send(null);
    },
  });

  app.get('/users/:id/factors', {
    config: { scope: 'admin:read' },
    schema: {
      tags,
      summary: 'List the user’s second factors (authenticator apps, passkeys) and how many recovery codes are left; never a secret',
      params: idParam,
      response: { 200: described(factorsSchema, 'The user’s authenticator apps, then their passkeys, oldest first'), ...errors },
    },
    handler: async (req) => {
      const { items, recoveryCodesLeft } = await mfa.overview(req.params.id);
      return json({ ...listOf(items), recoveryCodesLeft });
    },
  });

  app.delete('/users/:id/factors', {
    schema: {
      tags,
      summary: 'Turn off the user’s two-step verification: every authenticator app, passkey and recovery code goes, and the user is emailed',
      description: 'The user then signs in with their password alone, and can turn two-step verification on again on their account page.',
      params: idParam,
      response: { 204: described(z.null(), 'Turned off: the email is queued'), ...errorResponses({ 404: 'No such user', 409: 'Conflict: the user has no second factor' }) },
    },
    handler: async (req, reply) => {
      await mfa.resetAll(adminActor(req), req.params.id);
      return reply.code(204).send(null);
    },
  });
};
