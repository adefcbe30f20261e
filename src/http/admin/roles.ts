import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createRoleSchema, updateRoleSchema } from '../../roles/service.ts';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { described, errorResponses, idParam, json, page, pageQuery, roleSchema } from './schemas.ts';

const tags = ['roles'];
const errors = errorResponses({ 404: 'No such role' });
const errorsOfUser = errorResponses({ 404: 'No such user, or no such role' });
const errorsOfClient = errorResponses({ 404: 'No such client, or no such role' });
const roleParam = z.object({ role: z.string().min(1).max(200).describe('the role’s id or name') });
const holderRoleParams = z.object({ id: z.string().min(1).max(200), role: z.string().min(1).max(200).describe('the role’s id or name') });

/** Roles (named sets of API scopes) and who has them: people, and machine clients. */
export const roleRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { roles } }) => {
  app.post('/roles', {
    schema: { tags, summary: 'Create a role', body: createRoleSchema, response: { 201: described(roleSchema, 'Created: the role'), ...errorResponses({ 409: 'Conflict: a role with this name exists' }) } },
    handler: async (req, reply) => reply.code(201).send(json(await roles.create(req.body, adminActor(req)))),
  });

  app.get('/roles', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'List roles', querystring: z.object(pageQuery), response: { 200: described(page(roleSchema), 'A page of roles'), ...errorResponses({}) } },
    handler: async (req) => json({ ...(await roles.list(req.query)), limit: req.query.limit, offset: req.query.offset }),
  });

  app.get('/roles/:role', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'Get a role (by id or name)', params: roleParam, response: { 200: described(roleSchema, 'The role'), ...errors } },
    handler: async (req) => json(await roles.get(req.params.role)),
  });

  app.patch('/roles/:role', {
    schema: {
      tags,
      summary: 'Update a role',
      description: 'Fields left out keep their value; `permissions` replaces them all. The built-in roles (idp-admin, idp-viewer) keep their name and permissions.',
      params: roleParam,
      body: updateRoleSchema,
      response: { 200: described(roleSchema, 'The role, updated'), ...errorResponses({ 404: 'No such role', 409: 'Conflict: a role with this name exists' }) },
    },
    handler: async (req) => json(await roles.update(req.params.role, req.body, adminActor(req))),
  });

  app.delete('/roles/:role', {
    schema: { tags, summary: 'Delete a role (its holders lose it)', params: roleParam, response: { 204: described(z.null(), 'Deleted'), ...errors } },
    handler: async (req, reply) => {
      await roles.delete(req.params.role, adminActor(req));
      return reply.code(204).send(null);
    },
  });

  app.get('/users/:id/roles', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'The roles of a user', params: idParam, response: { 200: described(z.object({ items: z.array(roleSchema) }), 'The user’s roles'), ...errorResponses({ 404: 'No such user' }) } },
    handler: async (req) => json({ items: await roles.ofUser(req.params.id) }),
  });

  app.put('/users/:id/roles/:role', {
    schema: { tags, summary: 'Give a user a role (giving it again changes nothing)', params: holderRoleParams, response: { 200: described(roleSchema, 'The role, given'), ...errorsOfUser } },
    handler: async (req) => json(await roles.assign(req.params.id, req.params.role, adminActor(req))),
  });

  app.delete('/users/:id/roles/:role', {
    schema: { tags, summary: 'Take a role from a user', params: holderRoleParams, response: { 204: described(z.null(), 'Taken'), ...errorsOfUser } },
    handler: async (req, reply) => {
      await roles.unassign(req.params.id, req.params.role, adminActor(req));
      return reply.code(204).send(null);
    },
  });

  app.get('/clients/:id/roles', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'The roles of a machine client', params: idParam, response: { 200: described(z.object({ items: z.array(roleSchema) }), 'The client’s roles'), ...errorResponses({ 404: 'No such client' }) } },
    handler: async (req) => json({ items: await roles.ofClient(req.params.id) }),
  });

  app.put('/clients/:id/roles/:role', {
    schema: {
      tags,
      summary: 'Give a machine client a role (giving it again changes nothing)',
      description:
        'Its own tokens (client_credentials) for an API that enforces roles carry only the scopes its roles grant there. The built-in clients (idp-account, idp-console) and admin clients cannot be given roles (400); roles never open the admin API to a client that is not an admin client.',
      params: holderRoleParams,
      response: { 200: described(roleSchema, 'The role, given'), ...errorsOfClient },
    },
    handler: async (req) => json(await roles.assignToClient(req.params.id, req.params.role, adminActor(req))),
  });

  app.delete('/clients/:id/roles/:role', {
    schema: { tags, summary: 'Take a role from a machine client', params: holderRoleParams, response: { 204: described(z.null(), 'Taken'), ...errorsOfClient } },
    handler: async (req, reply) => {
      await roles.unassignFromClient(req.params.id, req.params.role, adminActor(req));
      return reply.code(204).send(null);
    },
  });
};
