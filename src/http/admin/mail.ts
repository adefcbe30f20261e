import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { listOf } from '../../lib/lists.ts';
import { MAIL_STATUSES } from '../../mail/outbox.ts';
import type { AdminServices } from './deps.ts';
import { adminActor } from './auth.ts';
import { described, errorResponses, idParam, json, mailMessageSchema, page, pageQuery } from './schemas.ts';

const tags = ['mail'];

/** The outbox, as an admin sees it: who was sent what, when, and what failed; never a message's body. */
export const mailRoutes: FastifyPluginAsyncZod<{ services: AdminServices }> = async (app, { services: { outbox } }) => {
  app.get('/mail', {
    config: { scope: 'admin:read' },
    schema: {
      tags,
      summary: 'List outgoing email, newest first',
      description: 'Recipient, subject, status and delivery attempts of each message; never its body (which may hold a single-use link, and is erased once sent).',
      querystring: z.object({ status: z.enum(MAIL_STATUSES).optional().describe('only messages in this state'), ...pageQuery }),
      response: { 200: described(page(mailMessageSchema), 'A page of outgoing messages, newest first'), ...errorResponses({}) },
    },
    handler: async (req) => {
      const { items, total } = await outbox.list(req.query);
      return json(listOf(items, { total, limit: req.query.limit, offset: req.query.offset }));
    },
  });

  app.post('/mail/:id/retry', {
    schema: {
      tags,
      summary: 'Send a failed message again',
      description: 'The message is tried again at once, with MAIL_MAX_ATTEMPTS attempts as a new one; only a failed message can be retried (409 otherwise).',
      params: idParam,
      response: {
        200: described(mailMessageSchema, 'The message, queued again'),
        ...errorResponses({ 404: 'No such message', 409: 'Conflict: only a failed message can be retried' }),
      },
    },
    handler: async (req) => json(await outbox.retry(req.params.id, adminActor(req))),
  });
};
