import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { listOf } from '../../lib/lists.ts';
import { all, auditEventSchema, described, errorResponses, example, json, keySchema, page, pageQuery } from './schemas.ts';

const errors = errorResponses({});
const SIGN_IN_ACTIONS = ['login.succeeded', 'login.failed'];

export const systemRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { keys, audit } }) => {
  app.get('/keys', {
    config: { scope: 'admin:read' },
    schema: { tags: ['keys'], summary: 'List signing keys (no private material)', response: { 200: described(all(keySchema), 'The signing keys'), ...errors } },
    handler: async () => json(listOf(await keys.list())),
  });

  app.post('/keys/rotate', {
    schema: {
      tags: ['keys'],
      summary: 'Start a key rotation',
      description: 'New keys are published at once and sign after the pre-publication period (KEY_PREPUBLICATION_SECONDS); the keys they replace stay published until every token they signed has expired.',
      response: {
        201: described(all(keySchema), 'Started: the new keys, published now and signing from their activation time'),
        ...errorResponses({ 409: 'Conflict: a rotation is already under way' }),
      },
    },
    handler: async (req, reply) => reply.code(201).send(json(listOf(await keys.rotate(adminActor(req))))),
  });

  app.get('/stats/sign-ins', {
    config: { scope: 'admin:read' },
    schema: {
      tags: ['audit'],
      summary: 'Sign-ins and failed sign-ins per day (UTC), from the audit trail',
      querystring: z.object({ days: example(z.coerce.number().int().min(1).max(90), 14).default(14).describe('how many days, today included') }),
      response: {
        200: described(z.object({ days: z.array(z.object({ date: example(z.string(), '2026-12-01'), succeeded: z.number().int().min(0), failed: z.number().int().min(0) })) }), 'One entry per day, oldest first'),
        ...errors,
      },
    },
    handler: async (req) => {
      const days = await audit.countsByDay(SIGN_IN_ACTIONS, req.query.days);
      return { days: days.map((d) => ({ date: d.date, succeeded: d.counts['login.succeeded'] ?? 0, failed: d.counts['login.failed'] ?? 0 })) };
    },
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
        // No example: Swagger UI would fill it in, and filter every try of the audit trail by it.
        since: z.iso.datetime().optional().describe('only events at this time or later, e.g. 2026-12-01T00:00:00Z'),
        until: z.iso.datetime().optional().describe('only events before this time, e.g. 2026-12-02T00:00:00Z'),
        ...pageQuery,
      }),
      response: { 200: described(page(auditEventSchema), 'A page of audit events, newest first'), ...errors },
    },
    handler: async (req) => {
      const { since, until, ...q } = req.query;
      const result = await audit.list({ ...q, ...(since ? { since: new Date(since) } : {}), ...(until ? { until: new Date(until) } : {}) });
      return json({ ...result, limit: q.limit, offset: q.offset });
    },
  });
};
