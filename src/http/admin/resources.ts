import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createResourceSchema, updateResourceSchema } from '../../resources/service.ts';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { errorSchema, idParam, json, page, pageQuery, resourceSchema } from './schemas.ts';

const tags = ['apis'];
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema };

export const resourceRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { resources } }) => {
  app.post('/resources', {
    schema: { tags, summary: 'Register an API', body: createResourceSchema, response: { 201: resourceSchema, 409: errorSchema, ...errors } },
    handler: async (req, reply) => reply.code(201).send(json(await resources.create(req.body, adminActor(req)))),
  });

  app.get('/resources', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'List APIs', querystring: z.object(pageQuery), response: { 200: page(resourceSchema), ...errors } },
    handler: async (req) => json({ ...(await resources.list(req.query)), limit: req.query.limit, offset: req.query.offset }),
  });

  app.get('/resources/:id', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'Get an API', params: idParam, response: { 200: resourceSchema, ...errors } },
    handler: async (req) => json(await resources.get(req.params.id)),
  });

  app.patch('/resources/:id', {
    schema: {
      tags,
      summary: 'Update an API (scopes, access-token TTL, signing algorithm)',
      description: 'Fields left out keep their value. `scopes` replaces the scopes and their descriptions together: a scope given without a description loses the one it had.',
      params: idParam,
      body: updateResourceSchema,
      response: { 200: resourceSchema, ...errors },
    },
    handler: async (req) => json(await resources.update(req.params.id, req.body, adminActor(req))),
  });

  app.delete('/resources/:id', {
    schema: { tags, summary: 'Delete an API', params: idParam, response: { 204: z.null(), ...errors } },
    handler: async (req, reply) => {
      await resources.delete(req.params.id, adminActor(req));
      return reply.code(204).send(null);
    },
  });
};
