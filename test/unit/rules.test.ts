// Pure rules, checked without a server: configuration, URLs, origins, redaction, lifetimes,
// throttling arithmetic, error answers.
import { describe, expect, it } from 'vitest';
import { createClientSchema, redirectUriIssues } from '../../src/clients/service.ts';
import { loadConfig } from '../../src/config.ts';
import { answerFor, pageFor } from '../../src/http/errors.ts';
import { isCrossSite } from '../../src/http/origin.ts';
import { pseudonym } from '../../src/lib/crypto.ts';
import { AppError, badRequest, StartupError } from '../../src/lib/errors.ts';
import { redactUrl } from '../../src/logger.ts';
import { ACR, essentialAcrUnmet, refreshTokenTtl } from '../../src/oidc/provider.ts';
import { waitSeconds } from '../../src/users/throttle.ts';

const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    return String((err as Error).message).split('\n').slice(1).map((l) => l.trim());
  }
};

describe('configuration', () => {
  it('derives the issuer, its origin and whether it is https', () => {
    expect(loadConfig({ PORT: '4000' })).toMatchObject({ issuer: 'http://localhost:4000', issuerOrigin: 'http://localhost:4000', secure: false });
    expect(loadConfig({ ISSUER: 'https://login.example.com/' })).toMatchObject({ issuer: 'https://login.example.com', secure: true });
  });

  it.each([
    ['false', false],
    ['0', false],
    ['1', 1],
    ['10.0.0.0/8, 192.168.1.10', ['10.0.0.0/8', '192.168.1.10']],
    ['::1, fd00::/8', ['::1', 'fd00::/8']],
  ])('TRUST_PROXY=%s is %j', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it.each([['true'], ['11'], ['10.0.0.0/33'], ['proxy.example.com']])('TRUST_PROXY=%s is refused', (value) => {
    expect(problems({ TRUST_PROXY: value })[0]).toMatch(/^TRUST_PROXY: /);
  });

  it('sign-up: closed by default; open requires verified addresses unless told otherwise; domains are lower-cased', () => {
    expect(loadConfig({}).signup).toMatchObject({ mode: 'closed', emailDomains: [], requireVerifiedEmail: false, verificationTtl: 86_400 });
    expect(loadConfig({ SIGNUP: 'open' }).signup.requireVerifiedEmail).toBe(true);
    expect(loadConfig({ SIGNUP: 'open', REQUIRE_VERIFIED_EMAIL: 'false' }).signup.requireVerifiedEmail).toBe(false);
    expect(loadConfig({ SIGNUP: 'invite', REQUIRE_VERIFIED_EMAIL: 'true' }).signup.requireVerifiedEmail).toBe(true);
    expect(loadConfig({ SIGNUP_EMAIL_DOMAINS: 'Example.org, @example.net' }).signup.emailDomains).toEqual(['example.org', 'example.net']);
    expect(problems({ SIGNUP: 'yes', SIGNUP_EMAIL_DOMAINS: 'example', REQUIRE_VERIFIED_EMAIL: '1', EMAIL_VERIFICATION_TTL: '60' })).toEqual([
      'SIGNUP: must be closed, invite or open',
      'SIGNUP_EMAIL_DOMAINS: must be domain names separated by commas, such as example.com,example.org',
      'REQUIRE_VERIFIED_EMAIL: must be true or false',
      expect.stringMatching(/^EMAIL_VERIFICATION_TTL: /),
    ]);
  });

  it('second factor: optional by default, or required of everyone; anything else is one line', () => {
    expect(loadConfig({}).mfa).toBe('optional');
    expect(loadConfig({ MFA: 'optional' }).mfa).toBe('optional');
    expect(loadConfig({ MFA: 'required' }).mfa).toBe('required');
    for (const value of ['yes', 'Required', 'true', '']) expect(problems({ MFA: value })).toEqual(['MFA: must be optional or required']);
  });

  it('reports every problem at once, cross-variable rules included', () => {
    expect(problems({ NODE_ENV: 'production', PORT: 'x', ISSUER: 'https://a.example/?q', GOOGLE_CLIENT_SECRET: 's', KEY_PREPUBLICATION_SECONDS: '10' })).toEqual([
      expect.stringMatching(/^PORT: /),
      'ISSUER: must not contain a query or a fragment',
      expect.stringMatching(/^COOKIE_SECRETS: required in production/),
      expect.stringMatching(/^KEY_ENCRYPTION_SECRET: required in production/),
      expect.stringMatching(/^SMTP_URL: required in production/),
      expect.stringMatching(/^KEY_PREPUBLICATION_SECONDS: must be at least JWKS_CACHE_SECONDS/),
      expect.stringMatching(/^GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET: /),
    ]);
  });
});

describe('redirect URIs and origins', () => {
  it.each([
    ['https://app.example.com/cb', []],
    ['http://127.0.0.1:8080/cb', []],
    ['http://localhost/cb', []],
    ['com.example.app:/callback', []],
    ['http://app.example.com/cb', ['must use https']],
    ['https://app.example.com/cb#x', ['fragment']],
    ['https://*.example.com/cb', ['wildcard']],
    ['https://user:pw@app.example.com/cb', ['credentials']],
    ['javascript:alert(1)', ['forbidden scheme']],
    ['myapp:/cb', ['reverse-domain']],
    ['/cb', ['not an absolute URI']],
  ])('%s', (uri, expected) => {
    const issues = redirectUriIssues(uri);
    expect(issues).toHaveLength(expected.length);
    for (const [i, part] of expected.entries()) expect(issues[i]).toContain(part);
  });

  it('a native app may not receive codes over https on loopback; a web app may not use private-use schemes', () => {
    const parse = (input: object) => createClientSchema.safeParse({ name: 'x', ...input });
    expect(parse({ applicationType: 'native', redirectUris: ['https://localhost/cb'] }).success).toBe(false);
    expect(parse({ applicationType: 'web', redirectUris: ['com.example.app:/cb'] }).success).toBe(false);
    expect(parse({ redirectUris: ['com.example.app:/cb'] }).success).toBe(true);
  });

  it('API scopes are refused in a client\'s scope, with a pointer to apis', () => {
    const res = createClientSchema.safeParse({ name: 'x', redirectUris: ['https://a.example/cb'], scope: 'openid read' });
    expect(res.success).toBe(false);
    expect(JSON.stringify(res.error?.issues)).toContain('API scopes are allowed per API');
  });

  it.each([
    [{}, false],
    [{ 'sec-fetch-site': 'same-origin' }, false],
    [{ 'sec-fetch-site': 'none' }, false],
    [{ origin: 'https://login.example.com' }, false],
    [{ origin: 'null' }, false],
    [{ 'sec-fetch-site': 'cross-site' }, true],
    [{ 'sec-fetch-site': 'same-site' }, true],
    [{ origin: 'https://evil.example' }, true],
  ])('a form with headers %j is cross-site: %s', (headers, cross) => {
    expect(isCrossSite(headers, 'https://login.example.com')).toBe(cross);
  });
});

describe('what is kept', () => {
  it('request URLs lose their credentials, keep their shape', () => {
    expect(redactUrl('/authorize?client_id=a&state=s3cr3t&code_challenge=c')).toBe('/authorize?client_id=a&state=[REDACTED]&code_challenge=c');
    expect(redactUrl('/cb?%63ode=abc&x=1')).toBe('/cb?%63ode=[REDACTED]&x=1');
    expect(redactUrl('/token')).toBe('/token');
  });

  it('a pseudonym is stable for one key and purpose, and reveals nothing across them', () => {
    const p = pseudonym('alice@example.com', 'k'.repeat(32), 'account');
    expect(p).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(pseudonym('alice@example.com', 'k'.repeat(32), 'account')).toBe(p);
    expect(pseudonym('alice@example.com', 'j'.repeat(32), 'account')).not.toBe(p);
    expect(pseudonym('alice@example.com', 'k'.repeat(32), 'other')).not.toBe(p);
  });
});

describe('lifetimes and waits', () => {
  const ttl = { refreshToken: 14 * 86_400, refreshTokenIdle: 7 * 86_400 };
  it.each([
    ['a first issue: the idle lifetime', 1_000_000, undefined, 7 * 86_400],
    ['13.5 days into the chain: what is left of the absolute 14', 1_000_000, 1_000_000 - 13.5 * 86_400, 0.5 * 86_400],
    ['past the absolute end: one second', 1_000_000, 1_000_000 - 20 * 86_400, 1],
  ])('refresh token: %s', (_name, now, iiat, expected) => {
    expect(refreshTokenTtl(now, iiat, ttl)).toBe(expected);
  });

  it('the wait grows by the increment from the threshold on, up to the maximum', () => {
    const policy = { waitIncrementSeconds: 60, maxWaitSeconds: 900 };
    expect([2, 3, 4, 5, 30].map((n) => waitSeconds(n, 3, policy))).toEqual([0, 60, 120, 180, 900]);
  });
});

describe('error answers', () => {
  it('an expected failure says what is wrong; a failure of ours says nothing and is logged', () => {
    expect(answerFor(badRequest('name: must not be empty'))).toMatchObject({ status: 400, code: 'invalid_request', description: 'name: must not be empty', internal: false });
    expect(answerFor(new AppError(500, 'x', 'secret detail', { expose: false }))).toMatchObject({ status: 500, code: 'server_error', internal: true });
    expect(answerFor(new TypeError('boom'))).toMatchObject({ status: 500, description: 'An unexpected error occurred.', internal: true });
    expect(answerFor(Object.assign(new Error('Body is too large'), { statusCode: 413 }))).toMatchObject({ status: 413, code: 'invalid_request', internal: false });
    expect(answerFor(Object.assign(new Error('x'), { code: 'P1001' }))).toMatchObject({ status: 503, code: 'temporarily_unavailable', headers: { 'retry-after': '5' } });
    expect(new StartupError('port_in_use', 'PORT: 80 …').expose).toBe(true);
  });

  it('pages: which page of the catalogue a person reads for each kind of failure', () => {
    expect(pageFor(Object.assign(new Error('x'), { code: 'FST_CSRF_INVALID_TOKEN', statusCode: 403 }))).toMatchObject({ status: 403, page: 'form_rejected' });
    expect(pageFor(new AppError(400, 'interaction_expired', 'x', { expose: false }))).toMatchObject({ status: 400, page: 'interaction_expired' });
    expect(pageFor(new AppError(400, 'interaction_unknown', 'x', { expose: false }))).toMatchObject({ status: 400, page: 'interaction_unknown' });
    expect(pageFor(badRequest('email: too long'))).toMatchObject({ status: 400, page: 'malformed' });
    expect(pageFor(Object.assign(new Error('x'), { statusCode: 400 }))).toMatchObject({ status: 400, page: 'malformed' });
    expect(pageFor(new Error('boom'))).toMatchObject({ status: 500, page: 'server_error', internal: true });
  });
});

describe('an essential acr claim (OpenID Connect Core §5.5.1.1)', () => {
  const claims = (acr: unknown) => ({ claims: JSON.stringify({ id_token: { acr } }) });
  it('is unmet only when required, with values, none of them the given acr', () => {
    expect(essentialAcrUnmet(claims({ essential: true, value: ACR.mfa }), ACR.password)).toBe(true);
    expect(essentialAcrUnmet(claims({ essential: true, value: ACR.mfa }), ACR.mfa)).toBe(false);
    expect(essentialAcrUnmet(claims({ essential: true, values: [ACR.password, ACR.mfa] }), ACR.password)).toBe(false);
    expect(essentialAcrUnmet(claims({ essential: true, values: [ACR.federated] }), ACR.mfa)).toBe(true);
    expect(essentialAcrUnmet(claims({ value: ACR.mfa }), ACR.password)).toBe(false);
    expect(essentialAcrUnmet(claims({ essential: true }), ACR.password)).toBe(false);
    expect(essentialAcrUnmet({}, ACR.password)).toBe(false);
    expect(essentialAcrUnmet({ claims: '{' }, ACR.password)).toBe(false);
  });
});
