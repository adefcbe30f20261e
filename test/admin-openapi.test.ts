// The admin API's OpenAPI document as the docs page (/admin/docs, Swagger UI) uses it: an OAuth2
// scheme whose Authorize button gets a token itself, responses named for what they are, and
// samples that read like real data (no negative counts, no dates thousands of years away).
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { haveBrowser, launchBrowser } from './helpers/browser.ts';
import { startServer, type TestServer } from './helpers/server.ts';

type Node = Record<string, unknown>;
type Requirement = Record<string, string[]>;
interface Operation {
  security?: Requirement[];
  responses: Record<string, { description?: string }>;
}
interface Document {
  security: Requirement[];
  components: { securitySchemes: Record<string, Node>; schemas: Record<string, Node> };
  paths: Record<string, Record<string, Operation>>;
}

let server: TestServer;
let admin: AdminApi;
let doc: Document;

beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
  doc = (await (await fetch(new URL('/admin/openapi.json', server.issuer))).json()) as Document;
});
afterAll(() => server?.close());

/** Every object in the document, with where it is and the object holding it. */
function* objects(value: unknown, at = '#', holder: Node = {}): Generator<[string, Node, Node]> {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) yield* objects(item, `${at}/${i}`, holder);
  } else if (value !== null && typeof value === 'object') {
    yield [at, value as Node, holder];
    for (const [key, child] of Object.entries(value)) yield* objects(child, `${at}/${key}`, value as Node);
  }
}

/** What Swagger UI shows for a schema: its first example when it has one (`examples`, then `example`). */
const exampleOf = (schema: Node): unknown => (Array.isArray(schema.examples) && schema.examples.length ? schema.examples[0] : schema.example);

/** The same, for a schema whose example its parameter (or media type) holds, as OpenAPI puts a query parameter's. */
const shownFor = (schema: Node, holder: Node): unknown => exampleOf(schema) ?? (holder.schema === schema ? exampleOf(holder) : undefined);

const operations = () => Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, method, op })));

/** The token request Swagger UI's Authorize sends for the clientCredentials flow (authorizeApplication). */
async function swaggerUiTokenRequest(clientId: string, clientSecret: string, scopes: string[], origin = server.issuer) {
  // The scopes ticked, space-separated; a field with no value is left out; the client id and secret
  // go in HTTP Basic, not URL-encoded first. The docs page is on this origin: the browser sends
  // its Origin and says the request is same-origin.
  const body = Object.entries({ grant_type: 'client_credentials', scope: scopes.join(' ') })
    .filter(([, value]) => value !== '')
    .map(([name, value]) => `${name}=${encodeURIComponent(value).replace(/%20/g, '+')}`)
    .join('&');
  const res = await fetch(new URL('/token', server.issuer), {
    method: 'POST',
    headers: {
      accept: 'application/json, text/plain, */*',
      'content-type': 'application/x-www-form-urlencoded',
      'x-requested-with': 'XMLHttpRequest',
      authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`, 'utf8').toString('base64')}`,
      origin,
      'sec-fetch-site': origin === server.issuer ? 'same-origin' : 'cross-site',
      'sec-fetch-mode': 'cors',
    },
    body,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, string> };
}

describe('the OpenAPI document of the admin API', () => {
  it('offers an OAuth2 client-credentials scheme at our token endpoint, with the admin scopes, next to plain bearer tokens', async () => {
    const discovery = (await (await fetch(new URL('/.well-known/openid-configuration', server.issuer))).json()) as { token_endpoint: string };
    expect(discovery.token_endpoint).toBe(`${server.issuer}/token`);
    expect(doc.components.securitySchemes.oauth2).toMatchObject({
      type: 'oauth2',
      flows: {
        clientCredentials: {
          tokenUrl: discovery.token_endpoint,
          scopes: { admin: 'Manage this identity provider', 'admin:read': "View this identity provider's configuration" },
        },
      },
    });
    expect(Object.keys((doc.components.securitySchemes.oauth2!.flows as Node) ?? {})).toEqual(['clientCredentials']);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ oauth2: ['admin'] }, { bearer: [] }]);
    // Each operation names what it needs: reading takes admin:read or admin; changing, admin.
    const ops = operations();
    expect(ops.length).toBeGreaterThan(30);
    for (const { name, method, op } of ops) {
      const scopes = method === 'get' ? ['admin:read', 'admin'] : ['admin'];
      expect(op.security, name).toEqual([...scopes.map((scope) => ({ oauth2: [scope] })), { bearer: [] }]);
    }
  });

  it('names every response of every operation: none is a "Default Response"', () => {
    const unnamed = operations().flatMap(({ name, op }) =>
      Object.entries(op.responses)
        .filter(([, response]) => !response.description || response.description === 'Default Response')
        .map(([status]) => `${name} ${status}`),
    );
    expect(unnamed).toEqual([]);
    expect(JSON.stringify(doc)).not.toContain('Default Response');

    const clients = doc.paths['/admin/v1/clients']!;
    expect(clients.post!.responses['201']!.description).toBe('Created: the client, and its secret (shown this once)');
    expect(clients.get!.responses['200']!.description).toBe('A page of clients');
    const one = doc.paths['/admin/v1/clients/{id}']!;
    expect(one.get!.responses).toMatchObject({
      200: { description: 'The client' },
      400: { description: expect.stringMatching(/^Invalid request/) },
      401: { description: 'Missing or invalid access token' },
      403: { description: 'The token lacks the needed scope' },
      404: { description: 'No such client' },
    });
    expect(one.delete!.responses['204']!.description).toBe('Deleted');
    expect(doc.paths['/admin/v1/users']!.post!.responses['409']!.description).toMatch(/^Conflict: /);
    // Every operation answers 401 and 403 alike, in the same words.
    for (const { name, op } of operations()) {
      expect(op.responses['401']?.description, name).toBe('Missing or invalid access token');
      expect(op.responses['403']?.description, name).toBe('The token lacks the needed scope');
    }
  });

  it('shows no negative number where a count, a limit or an offset goes', () => {
    // Swagger UI shows an integer's example, or else its minimum: neither may be negative.
    const integers = [...objects(doc)].filter(([, node]) => node.type === 'integer');
    expect(integers.length).toBeGreaterThan(10);
    for (const [at, node, holder] of integers) {
      const shown = shownFor(node, holder) ?? node.minimum;
      expect(typeof shown, at).toBe('number');
      expect(shown as number, at).toBeGreaterThanOrEqual(0);
    }
    // The paging envelope, and every count, is bounded below by what the data allows.
    const counts = [...objects(doc)].flatMap(([at, node]) =>
      Object.entries((node.properties as Record<string, Node> | undefined) ?? {})
        .filter(([name]) => ['total', 'limit', 'offset', 'revoked', 'attempts'].includes(name))
        .map(([name, schema]) => [`${at}/properties/${name}`, schema] as const),
    );
    expect(counts.filter(([at]) => at.endsWith('/total')).length).toBeGreaterThan(5);
    expect(counts.filter(([at]) => at.endsWith('/offset')).length).toBeGreaterThan(3);
    for (const [at, schema] of counts) {
      expect(schema.minimum, at).toBeGreaterThanOrEqual(at.endsWith('/limit') ? 1 : 0);
    }
    const limit = counts.find(([at]) => at.endsWith('/limit'))![1];
    expect(limit).toMatchObject({ minimum: 1, maximum: 200 });
  });

  it('gives every timestamp it shows an example in a plausible year', () => {
    // (A query parameter gets none: Swagger UI would fill it in, and filter by it.)
    const timestamps = [...objects(doc)].filter(([at, node]) => node.format === 'date-time' && !at.includes('/parameters/'));
    expect(timestamps.length).toBeGreaterThan(20);
    for (const [at, node, holder] of timestamps) {
      const shown = shownFor(node, holder);
      expect(typeof shown, at).toBe('string');
      const year = new Date(shown as string).getUTCFullYear();
      expect(year, `${at}: ${String(shown)}`).toBeGreaterThanOrEqual(2000);
      expect(year, `${at}: ${String(shown)}`).toBeLessThan(2100);
    }
  });

  it('gives ids, emails, client ids, URIs and scopes examples that look like them', async () => {
    const { Client, User, Api, AuditEvent } = doc.components.schemas as Record<string, { properties: Record<string, Node> }>;
    expect(exampleOf(Client!.properties.clientId!)).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(exampleOf(Client!.properties.redirectUris!)).toEqual([expect.stringMatching(/^https:\/\//)]);
    expect(exampleOf(Client!.properties.scope!)).toContain('openid');
    expect(exampleOf(User!.properties.email!)).toMatch(/^[^@\s]+@[^@\s]+\.[a-z]+$/);
    expect(exampleOf(User!.properties.id!)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(exampleOf(Api!.properties.identifier!)).toMatch(/^https:\/\//);
    expect(exampleOf(Api!.properties.scopes!)).toEqual(expect.arrayContaining(['read']));
    expect(exampleOf(AuditEvent!.properties.actor!)).toMatch(/^client:/);
    // No string field of a documented object is left to Swagger UI's "string".
    for (const [name, schema] of Object.entries({ Client, User, Api })) {
      for (const [field, property] of Object.entries(schema!.properties)) {
        const branches = [property, ...((property.anyOf as Node[] | undefined) ?? [])];
        const text = branches.some((branch) => branch.type === 'string' && branch.format !== 'date-time' && !branch.enum);
        if (text) expect(exampleOf(property), `${name}.${field}`).toBeDefined();
      }
    }
    // A request body starts from an example that the API accepts.
    const body = (doc.paths['/admin/v1/clients']!.post as unknown as { requestBody: { content: Record<string, { example?: unknown }> } }).requestBody.content['application/json']!.example;
    const created = await admin.call('POST', '/admin/v1/clients', body);
    expect(created.status, JSON.stringify([body, created.body])).toBe(201);
  });
});

describe('Authorize on the docs page', () => {
  it('gets a token with the request Swagger UI sends (form body, HTTP Basic, same origin), which the admin API accepts', async () => {
    const read = await swaggerUiTokenRequest(admin.clientId, admin.clientSecret, ['admin:read']);
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body).toMatchObject({ token_type: 'Bearer', scope: 'admin:read', access_token: expect.any(String) });
    expect((await admin.call('GET', '/admin/v1/clients', undefined, read.body.access_token)).status).toBe(200);
    expect((await admin.call('POST', '/admin/v1/users', { email: 'docs-read@example.com' }, read.body.access_token)).status).toBe(403);

    // Both scopes ticked: the token changes things too.
    const both = await swaggerUiTokenRequest(admin.clientId, admin.clientSecret, ['admin:read', 'admin']);
    expect(both.status, JSON.stringify(both.body)).toBe(200);
    expect((await admin.call('POST', '/admin/v1/users', { email: 'docs-admin@example.com' }, both.body.access_token)).status).toBe(201);
  });

  it('is still refused from another origin, and with a wrong secret', async () => {
    const foreign = await swaggerUiTokenRequest(admin.clientId, admin.clientSecret, ['admin'], 'https://evil.example');
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toBe('invalid_request');
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const wrong = await swaggerUiTokenRequest(admin.clientId, `${admin.clientSecret}x`, ['admin']);
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
  });
});

describe.skipIf(!haveBrowser)('Authorize on the docs page, in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(() => browser?.close());

  it('types an admin client’s id and secret into Authorize, and a request tried out with the token answers 200', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    const cspViolations: string[] = [];
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
    await page.goto(`${server.issuer}/admin/docs`);
    await page.getByRole('heading', { name: /Identity provider admin API/ }).waitFor();

    await page.locator('.auth-wrapper button.authorize').click();
    await page.locator('#client_id_clientCredentials').fill(admin.clientId);
    await page.locator('#client_secret_clientCredentials').fill(admin.clientSecret);
    const tokenResponse = page.waitForResponse((res) => new URL(res.url()).pathname === '/token');
    await page.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click();
    const token = await tokenResponse;
    expect(token.status(), await token.text()).toBe(200);
    expect(token.request().headers().authorization).toBe(`Basic ${Buffer.from(`${admin.clientId}:${admin.clientSecret}`).toString('base64')}`);
    expect(token.request().postData()).toBe('grant_type=client_credentials&scope=admin%3Aread');
    await page.getByRole('button', { name: 'Remove authorization' }).waitFor();
    await page.getByRole('button', { name: 'Close' }).first().click();

    const operation = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/admin/v1/clients"])');
    await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    const listed = page.waitForResponse((res) => new URL(res.url()).pathname === '/admin/v1/clients' && res.request().method() === 'GET');
    await operation.getByRole('button', { name: 'Execute' }).click();
    const res = await listed;
    expect(res.status()).toBe(200);
    expect(res.request().headers().authorization).toMatch(/^Bearer /);
    const status = operation.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    expect((await status.textContent())?.trim()).toBe('200');
    expect(cspViolations).toEqual([]);
    await page.close();
  });
});
