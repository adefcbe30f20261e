import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from './helpers/cli.ts';
import { authorize, discover, REDIRECT_URI } from './helpers/flow.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const EXPECTED = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());

const headersOf = (res: Response) => Object.fromEntries(Object.keys(EXPECTED).map((k) => [k, res.headers.get(k)]));

describe('security headers on every HTML page', () => {
  it('are on the pages we render and on the ones the provider renders; no HSTS over http', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const login = (await authorize(new UserAgent(), config, { consent: false })).last.res;
    const providerError = await fetch(`${server.issuer}/authorize?client_id=nope&response_type=code`);
    const expired = await fetch(`${server.issuer}/interaction/nope`);
    for (const res of [login, providerError, expired]) {
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(headersOf(res)).toEqual(EXPECTED);
      expect(res.headers.get('strict-transport-security')).toBeNull();
    }
  });

  it('add HSTS when the issuer is https', async () => {
    const port = await freePort();
    const tls = await startServer({ ISSUER: `https://127.0.0.1:${port}` }, { port });
    try {
      const res = await fetch(`http://127.0.0.1:${port}/interaction/nope`);
      expect(headersOf(res)).toEqual(EXPECTED);
      expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    } finally {
      await tls.close();
    }
  });

  it('token responses are never cached', async () => {
    const res = await fetch(`${server.issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});
