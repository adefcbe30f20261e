import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { JWK } from 'jose';
import { z } from 'zod';
import { badRequest } from '../../lib/errors.ts';
import { ADMIN_API, ADMIN_SCOPE_DESCRIPTIONS } from '../../lib/scopes.ts';
import { problems } from '../../lib/validation.ts';
import { PROVIDER_ROUTES } from '../../oidc/provider.ts';
import { sendJsonError } from '../errors.ts';
import type { AdminServices } from './deps.ts';
import { createAdminAuth } from './auth.ts';
import { clientRoutes } from './clients.ts';
import { upstreamRoutes } from './upstreams.ts';
import { resourceRoutes } from './resources.ts';
import { mailRoutes } from './mail.ts';
import { invitationRoutes } from './invitations.ts';
import { systemRoutes } from './system.ts';
import { settingsRoutes, type ServerSettings } from './settings.ts';
import { roleRoutes } from './roles.ts';
import { userRoutes } from './users.ts';

const ADMIN_PREFIX = '/admin/v1';

/**
 * Swagger UI sets inline style attributes; its scripts are files of its own, and it fetches only
 * from this origin: the OpenAPI document, the token endpoint (Authorize) and the admin API.
 */
const DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface AdminDeps {
  services: AdminServices;
  issuer: string;
  jwks: () => JWK[];
  version: string;
  /** The headers of every page we serve (frame, sniffing, caching, referrer, HSTS over https). */
  pageHeaders: Readonly<Record<string, string>>;
  /** What GET /settings shows of the configuration. */
  settings: ServerSettings;
}

/** The admin REST API under /admin/v1, its OpenAPI document and a browsable docs page. */
export async function adminApi(app: FastifyInstance, deps: AdminDeps) {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.setErrorHandler((err: Error & { validationContext?: string }, req, reply) => {
    // A schema refusal names each field (body.redirectUris.0: …) in one 400.
    if (hasZodFastifySchemaValidationErrors(err)) {
      const detail = err.validation
        .flatMap((v) => {
          const at = `${err.validationContext ?? 'request'}${v.instancePath.replace(/\//g, '.')}`.replace(/\.+$/, '');
          const issue = { ...v.params, code: v.keyword, path: [], message: v.message ?? '' } as unknown as Parameters<typeof problems>[0][number];
          return problems([issue]).map((p) => `${[at, ...p.path].join('.')}: ${p.message}`);
        })
        .join('; ');
      return sendJsonError(badRequest(detail), req, reply);
    }
    return sendJsonError(err, req, reply);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Identity provider admin API',
        version: deps.version,
        description:
          'Manage clients, APIs, users, signing keys and outgoing email. Authenticate with a bearer access token from this identity provider: `POST /token` with `grant_type=client_credentials&scope=admin` (or `admin:read` for read-only access), with the id and secret of an admin client. On the docs page, **Authorize** does this for you: type the client id and secret under oauth2 and tick the scopes.',
      },
      servers: [{ url: deps.issuer }],
      components: {
        securitySchemes: {
          // The docs page's Authorize button gets a token itself: the client id and secret of an
          // admin client, sent with HTTP Basic to the token endpoint, on this same origin.
          oauth2: {
            type: 'oauth2',
            description: 'The client id and secret of an admin client (`idp clients create --admin`): a client_credentials token for the scopes ticked.',
            flows: { clientCredentials: { tokenUrl: `${deps.issuer}${PROVIDER_ROUTES.token}`, scopes: { ...ADMIN_SCOPE_DESCRIPTIONS } } },
          },
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token for the admin API from `POST /token`.' },
        },
      },
      security: [{ oauth2: ['admin'] }, { bearer: [] }],
    },
    transform: (document) => {
      const { url, schema } = jsonSchemaTransform(document);
      // Each operation names the scope it needs: reading takes admin:read (or admin), the rest admin.
      const scopes = document.route.config?.scope === 'admin:read' ? ['admin:read', 'admin'] : ['admin'];
      const security = [...scopes.map((scope) => ({ oauth2: [scope] })), { bearer: [] }];
      // zod leaves a body's example (schemas.ts: example) out of a schema that transforms what it
      // reads, taking examples for what comes out: it is what an admin sends, so it goes back in.
      const body = document.schema.body;
      const examples = body instanceof z.ZodType ? z.globalRegistry.get(body)?.examples : undefined;
      return { url, schema: { ...schema, ...(examples && schema.body ? { body: { ...schema.body, examples } } : {}), security } };
    },
    transformObject: jsonSchemaTransformObject,
  });
  app.get('/admin/openapi.json', { schema: { hide: true } }, () => app.swagger());
  // The docs run Swagger UI's scripts on the sign-in origin: they get the pages' protections too
  // (its own scripts and styles only, no framing, no sniffing, no caching, no referrer).
  await app.register(async (docs) => {
    const headers = { ...deps.pageHeaders, 'content-security-policy': DOCS_CSP };
    docs.addHook('onSend', async (_req, reply) => {
      reply.headers(headers);
    });
    // Authorize starts with the read-only scope ticked; tick admin to change anything.
    await docs.register(swaggerUi, { routePrefix: '/admin/docs', uiConfig: { validatorUrl: null }, initOAuth: { scopes: ['admin:read'] } });
  });

  const { users, roles } = deps.services;
  const authenticate = createAdminAuth({
    issuer: deps.issuer,
    jwks: deps.jwks,
    clients: deps.services.clients,
    personScopes: async (userId) => ((await users.findActive(userId)) ? (await roles.grantsOf(userId)).scopes(ADMIN_API) : null),
    seen: (key, seconds) => deps.services.throttle.hit(key, seconds),
  });
  await app.register(
    async (v1) => {
      v1.addHook('onRequest', authenticate);
      v1.addHook('onSend', async (_req, reply) => {
        reply.header('cache-control', 'no-store');
      });
      await v1.register(clientRoutes, { services: deps.services });
      await v1.register(resourceRoutes, { services: deps.services });
      await v1.register(userRoutes, { services: deps.services });
      await v1.register(roleRoutes, { services: deps.services });
      await v1.register(upstreamRoutes, { services: deps.services });
      await v1.register(systemRoutes, { services: deps.services });
      await v1.register(settingsRoutes, { settings: deps.settings });
      await v1.register(mailRoutes, { services: deps.services });
      await v1.register(invitationRoutes, { services: deps.services });
    },
    { prefix: ADMIN_PREFIX },
  );
}
