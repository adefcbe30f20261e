import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createResourceSchema, updateResourceSchema } from '../../resources/service.ts';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { described, errorResponses, example, idParam, json, page, pageQuery, resourceSchema } from './schemas.ts';

const tags = ['apis'];
const errors = errorResponses({ 404: 'No such API' });

export const resourceRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { resources } }) => {
  app.post('/resources', {
    schema: {
      tags,
      summary: 'Register an API',
      body: example(createResourceSchema, {
        identifier: 'https://api.example.com',
        name: 'Documents',
        scopes: [
          { name: 'read', description: 'Read your documents' },
          { name: 'write', description: 'Change your documents' },
        ],
      }),
      response: { 201: described(resourceSchema, 'Created: the API'), ...errorResponses({ 409: 'Conflict: an API with this identifier exists' }) },
    },
    handler: async (req, reply) => reply.code(201).send(json(await resources.create(req.body, adminActor(req)))),
  });

  app.get('/resources', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'List APIs', querystring: z.object(pageQuery), response: { 200: described(page(resourceSchema), 'A page of APIs'), ...errorResponses({}) } },
    handler: async (req) => json({ ...(await resources.list(req.query)), limit: req.query.limit, offset: req.query.offset }),
  });

  app.get('/resources/:id', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'Get an API', params: idParam, response: { 200: described(resourceSchema, 'The API'), ...errors } },
    handler: async (req) => json(await resources.get(req.params.id)),
  });

  app.patch('/resources/:id', {
    schema: {
      tags,
      summary: 'Update an API (scopes, access-token TTL, signing algorithm, roles, claim mappings)',
      description:
        'Fields left out keep their value. `scopes` replaces the scopes and their descriptions together: a scope given without a description loses the one it had. `claimMappings` replaces the mappings (`{}` removes them all).',
      params: idParam,
      body: example(updateResourceSchema, { accessTokenTtl: 900 }),
      response: { 200: described(resourceSchema, 'The API, updated'), ...errors },
    },
    handler: async (req) => json(await resources.update(req.params.id, req.body, adminActor(req))),
  });

  app.delete('/resources/:id', {
    schema: { tags, summary: 'Delete an API', params: idParam, response: { 204: described(z.null(), 'Deleted'), ...errors } },
    handler: async (req, reply) => {
      await resources.delete(req.params.id, adminActor(req));
      return reply.code(204).send(null);
    },
  });
};
