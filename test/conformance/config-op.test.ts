// OpenID conformance suite: the Config OP plan (oidcc-config-certification-test-plan, static client).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Op, startOp } from '../helpers/conformance.ts';

let op: Op;
beforeAll(async () => {
  op = await startOp();
});
afterAll(() => op?.close());

describe('OpenID Connect Core: Config Certification Profile', () => {
  it('oidcc-discovery-endpoint-verification: the discovery document has what OpenID Connect Discovery §3 requires, on https, and a valid JWKS', async () => {
    const res = await op.fetch(`${op.issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const meta = (await res.json()) as Record<string, unknown>;

    // The issuer: the URL discovery was fetched from, https, no query or fragment.
    expect(meta.issuer).toBe(op.issuer);
    const issuer = new URL(String(meta.issuer));
    expect(issuer.protocol).toBe('https:');
    expect(issuer.search + issuer.hash).toBe('');
    // Required members, and endpoints on the issuer; every *_endpoint is https.
    for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) expect(String(meta[key]), key).toMatch(new RegExp(`^${op.issuer}/`));
    for (const [key, value] of Object.entries(meta)) if (key.endsWith('_endpoint')) expect(new URL(String(value)).protocol, key).toBe('https:');
    // response_types_supported: at least one of the OpenID Connect ones; subject_types_supported: public or pairwise.
    expect(meta.response_types_supported).toContain('code');
    expect((meta.subject_types_supported as string[]).some((t) => t === 'public' || t === 'pairwise')).toBe(true);
    // RS256 for ID tokens (OIDC Core §15.1); never alg none.
    expect(meta.id_token_signing_alg_values_supported).toContain('RS256');
    expect(meta.id_token_signing_alg_values_supported).not.toContain('none');
    // grant_types_supported, if present, a non-empty array.
    expect(Array.isArray(meta.grant_types_supported) && (meta.grant_types_supported as unknown[]).length > 0).toBe(true);
    // scopes_supported contains openid; every scope a valid scope token.
    expect(meta.scopes_supported).toContain('openid');
    for (const scope of meta.scopes_supported as string[]) expect(scope).toMatch(/^[\x21\x23-\x5B\x5D-\x7E]+$/);
    // claims_parameter_supported (the suite notes it), claims_supported a list of strings.
    expect(typeof meta.claims_parameter_supported).toBe('boolean');
    expect((meta.claims_supported as unknown[]).every((c) => typeof c === 'string')).toBe(true);
    expect(meta.claims_supported).toEqual(expect.arrayContaining(['sub', 'iss', 'auth_time', 'acr']));
    // request objects: RS256 among the request object algorithms (a warning in the suite when missing).
    expect(meta.request_parameter_supported).toBe(true);
    expect(meta.request_object_signing_alg_values_supported).toContain('RS256');
    // ui_locales_supported: BCP 47 tags, canonical casing.
    for (const tag of meta.ui_locales_supported as string[]) expect(Intl.getCanonicalLocales(tag)[0]).toBe(tag);
    expect(Array.isArray(meta.code_challenge_methods_supported)).toBe(true);

    // The JWKS: public keys only, each with a unique kid, and RS256 among them.
    const jwksRes = await op.fetch(String(meta.jwks_uri));
    expect(jwksRes.status).toBe(200);
    const { keys } = (await jwksRes.json()) as { keys: Record<string, unknown>[] };
    expect(keys.length).toBeGreaterThan(0);
    expect(new Set(keys.map((k) => k.kid)).size).toBe(keys.length);
    for (const key of keys) for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key, String(key.kid)).not.toHaveProperty(secret);
    expect(keys.some((k) => k.kty === 'RSA' && (k.alg === undefined || k.alg === 'RS256'))).toBe(true);
  });
});
