import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createClientSchema, MAX_SECRET_OVERLAP, updateClientSchema } from '../../clients/service.ts';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { clientSchema, clientWithSecretSchema, described, errorResponses, example, idParam, json, page, pageQuery } from './schemas.ts';

const tags = ['clients'];
const errors = errorResponses({});
const errorsOfOne = errorResponses({ 404: 'No such client' });
const theClient = described(clientSchema, 'The client');
const APP = {
  name: 'My App',
  redirectUris: ['https://app.example.com/callback'],
  postLogoutRedirectUris: ['https://app.example.com/'],
  scope: 'openid profile email offline_access',
};

export const clientRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { clients } }) => {
  app.post('/clients', {
    schema: {
      tags,
      summary: 'Register a client',
      description: 'The secret of a confidential client is in the response, once; only its hash is stored.',
      body: example(createClientSchema, APP),
      querystring: z.object({ admin: z.stringbool().default(false).describe('an admin client: client_credentials for the admin API') }),
      response: { 201: described(clientWithSecretSchema, 'Created: the client, and its secret (shown this once)'), ...errors },
    },
    handler: async (req, reply) => reply.code(201).send(json(await clients.create(req.body, adminActor(req), { admin: req.query.admin }))),
  });

  app.get('/clients', {
    config: { scope: 'admin:read' },
    schema: {
      tags,
      summary: 'List clients',
      querystring: z.object({ name: z.string().max(200).optional().describe('part of the name'), ...pageQuery }),
      response: { 200: described(page(clientSchema), 'A page of clients'), ...errors },
    },
    handler: async (req) => json({ ...(await clients.list(req.query)), limit: req.query.limit, offset: req.query.offset }),
  });

  app.get('/clients/:id', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'Get a client', params: idParam, response: { 200: theClient, ...errorsOfOne } },
    handler: async (req) => json(await clients.get(req.params.id)),
  });

  app.patch('/clients/:id', {
    schema: {
      tags,
      summary: 'Update client metadata',
      description: 'Fields left out keep their value; a list given replaces the registered one; a link (logoUri, policyUri, tosUri, clientUri) set to null is removed.',
      params: idParam,
      body: example(updateClientSchema, { name: 'My App', redirectUris: APP.redirectUris, logoUri: 'https://app.example.com/logo.png', requireMfa: true }),
      response: { 200: described(clientSchema, 'The client, updated'), ...errorsOfOne },
    },
    handler: async (req) => json(await clients.update(req.params.id, req.body, adminActor(req))),
  });

  app.post('/clients/:id/disable', {
    schema: { tags, summary: 'Disable a client and revoke its grants and tokens', params: idParam, response: { 200: described(clientSchema, 'The client, disabled'), ...errorsOfOne } },
    handler: async (req) => json(await clients.setDisabled(req.params.id, true, adminActor(req))),
  });

  app.post('/clients/:id/enable', {
    schema: { tags, summary: 'Enable a client', params: idParam, response: { 200: described(clientSchema, 'The client, enabled'), ...errorsOfOne } },
    handler: async (req) => json(await clients.setDisabled(req.params.id, false, adminActor(req))),
  });

  app.delete('/clients/:id', {
    schema: { tags, summary: 'Delete a client and revoke its grants and tokens', params: idParam, response: { 204: described(z.null(), 'Deleted'), ...errorsOfOne } },
    handler: async (req, reply) => {
      await clients.delete(req.params.id, adminActor(req));
      return reply.code(204).send(null);
    },
  });

  app.post('/clients/:id/rotate-secret', {
    schema: {
      tags,
      summary: 'Issue a new client secret',
      description: 'The new secret is in the response, once. With overlapSeconds, the old secret keeps working until then.',
      params: idParam,
      body: z
        .object({ overlapSeconds: example(z.number().int().min(0).max(MAX_SECRET_OVERLAP).default(0), 3600).describe('seconds the old secret keeps working') })
        .strict()
        .nullish(),
      response: { 200: described(clientWithSecretSchema, 'The client and its new secret (shown this once)'), ...errorsOfOne },
    },
    handler: async (req) => json(await clients.rotateSecret(req.params.id, req.body?.overlapSeconds ?? 0, adminActor(req))),
  });
};
