import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { listOf } from '../../lib/lists.ts';
import { all, auditEventSchema, errorSchema, json, keySchema, page, pageQuery } from './schemas.ts';

const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema };

export const systemRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { keys, audit } }) => {
  app.get('/keys', {
    config: { scope: 'admin:read' },
    schema: { tags: ['keys'], summary: 'List signing keys (no private material)', response: { 200: all(keySchema), ...errors } },
    handler: async () => json(listOf(await keys.list())),
  });

  app.post('/keys/rotate', {
    schema: {
      tags: ['keys'],
      summary: 'Start a key rotation',
      description: 'New keys are published at once and sign after the pre-publication period (KEY_PREPUBLICATION_SECONDS); the keys they replace stay published until every token they signed has expired.',
      response: { 201: all(keySchema), 409: errorSchema, ...errors },
    },
    handler: async (req, reply) => reply.code(201).send(json(listOf(await keys.rotate(adminActor(req))))),
  });

  app.get('/audit', {
    config: { scope: 'admin:read' },
    schema: {
      tags: ['audit'],
      summary: 'Read the audit trail, newest first',
      querystring: z.object({
        action: z.string().max(100).optional().describe('e.g. client.created, user.disabled, refresh_token.reuse_detected'),
        actor: z.string().max(300).optional().describe('e.g. client:<client_id>, cli:<user>@<host>'),
        target: z.string().max(300).optional().describe('the id the event is about'),
        since: z.iso.datetime().optional(),
        until: z.iso.datetime().optional(),
        ...pageQuery,
      }),
      response: { 200: page(auditEventSchema), ...errors },
    },
    handler: async (req) => {
      const { since, until, ...q } = req.query;
      const result = await audit.list({ ...q, ...(since ? { since: new Date(since) } : {}), ...(until ? { until: new Date(until) } : {}) });
      return json({ ...result, limit: q.limit, offset: q.offset });
    },
  });
};
