import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createProviderSchema, updateProviderSchema } from '../../federation/upstreams.ts';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { listOf } from '../../lib/lists.ts';
import { all, described, errorResponses, example, json, providerSchema } from './schemas.ts';

const tags = ['identity providers'];
const errors = errorResponses({ 404: 'No such identity provider' });
const idParam = z.object({ id: z.string().min(1).max(40) });

export const upstreamRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { upstreams } }) => {
  app.post('/providers', {
    schema: {
      tags,
      summary: 'Add an upstream OpenID Connect provider (a sign-in button on the login page)',
      description: 'The client secret is encrypted at rest and never shown again. `preset: "google"` fills in Google’s issuer, scopes and label.',
      body: example(createProviderSchema, {
        id: 'google',
        preset: 'google',
        clientId: '123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com',
        clientSecret: 'the client secret Google gave you',
      }),
      response: {
        201: described(providerSchema, 'Created: the identity provider'),
        ...errorResponses({ 409: 'Conflict: an identity provider with this id exists, or GOOGLE_* variables configure it' }),
      },
    },
    handler: async (req, reply) => reply.code(201).send(json(await upstreams.create(req.body, adminActor(req)))),
  });

  app.get('/providers', {
    config: { scope: 'admin:read' },
    schema: {
      tags,
      summary: 'List upstream providers configured here (Google from GOOGLE_* variables is not listed)',
      response: { 200: described(all(providerSchema), 'The identity providers configured here'), ...errorResponses({}) },
    },
    handler: async () => json(listOf(await upstreams.list())),
  });

  app.get('/providers/:id', {
    config: { scope: 'admin:read' },
    schema: { tags, summary: 'Get an upstream provider', params: idParam, response: { 200: described(providerSchema, 'The identity provider'), ...errors } },
    handler: async (req) => json(await upstreams.get(req.params.id)),
  });

  app.patch('/providers/:id', {
    schema: {
      tags,
      summary: 'Update an upstream provider (a new clientSecret replaces the old one)',
      params: idParam,
      body: example(updateProviderSchema, { buttonLabel: 'Continue with Google', hostedDomains: ['example.com'] }),
      response: { 200: described(providerSchema, 'The identity provider, updated'), ...errors },
    },
    handler: async (req) => json(await upstreams.update(req.params.id, req.body, adminActor(req))),
  });

  app.delete('/providers/:id', {
    schema: {
      tags,
      summary: 'Remove an upstream provider (linked identities stay, unusable until it returns)',
      params: idParam,
      response: { 204: described(z.null(), 'Removed'), ...errors },
    },
    handler: async (req, reply) => {
      await upstreams.delete(req.params.id, adminActor(req));
      return reply.code(204).send(null);
    },
  });
};
