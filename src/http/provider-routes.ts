import type { FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import { PROVIDER_ROUTES } from '../oidc/provider.ts';

/**
 * Hands the provider's paths to it untouched. The request body is left unread (the provider
 * parses it itself), and the URL is not rewritten, so the endpoints it advertises are the
 * ones it serves.
 */
export async function providerRoutes(app: FastifyInstance, opts: { provider: Provider }) {
  const callback = opts.provider.callback();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  const paths = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];
  for (const path of Object.values(PROVIDER_ROUTES)) paths.push(path, `${path}/*`);

  for (const url of paths) {
    app.route({
      method: ['GET', 'HEAD', 'POST', 'OPTIONS', 'PUT', 'DELETE'],
      url,
      handler(request, reply) {
        reply.hijack();
        callback(request.raw, reply.raw);
      },
    });
  }
}
