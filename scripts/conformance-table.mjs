// Writes docs/conformance.md (npm run conformance): every module of the OpenID conformance
// suite's six OP plans that this provider is measured against, and where each stands: mirrored by
// a test in test/conformance/ (named after the module), not applicable (with the reason), failing
// (a product bug, reported, kept out of the test files), or not yet mirrored.
// `--check` writes nothing and fails when docs/conformance.md is not what this would write.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const DOC = `${root}docs/conformance.md`;
const TESTS = `${root}test/conformance/`;

// The plans, with their modules in the suite's order (openid/conformance-suite, net.openid.conformance.openid.*TestPlan).
const BASIC = [
  'oidcc-server',
  'oidcc-response-type-missing',
  'oidcc-idtoken-signature',
  'oidcc-idtoken-unsigned',
  'oidcc-userinfo-get',
  'oidcc-userinfo-post-header',
  'oidcc-userinfo-post-body',
  'oidcc-ensure-request-without-nonce-succeeds-for-code-flow',
  'oidcc-scope-profile',
  'oidcc-scope-email',
  'oidcc-scope-address',
  'oidcc-scope-phone',
  'oidcc-scope-all',
  'oidcc-alternate-happy-flow',
  'oidcc-display-page',
  'oidcc-display-popup',
  'oidcc-prompt-login',
  'oidcc-prompt-none-not-logged-in',
  'oidcc-prompt-none-logged-in',
  'oidcc-max-age-1',
  'oidcc-max-age-10000',
  'oidcc-ensure-request-with-unknown-parameter-succeeds',
  'oidcc-id-token-hint',
  'oidcc-login-hint',
  'oidcc-ui-locales',
  'oidcc-claims-locales',
  'oidcc-ensure-request-with-acr-values-succeeds',
  'oidcc-codereuse',
  'oidcc-codereuse-30seconds',
  'oidcc-ensure-registered-redirect-uri',
  'oidcc-ensure-post-request-succeeds',
  'oidcc-server-client-secret-post',
  'oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported',
  'oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported',
  'oidcc-claims-essential',
  'oidcc-ensure-request-object-with-redirect-uri',
  'oidcc-refresh-token',
  'oidcc-ensure-request-with-valid-pkce-succeeds',
];
const PLANS = [
  { name: 'Basic OP', plan: 'oidcc-basic-certification-test-plan', file: 'basic-op.test.ts', modules: BASIC },
  { name: 'Config OP', plan: 'oidcc-config-certification-test-plan', file: 'config-op.test.ts', modules: ['oidcc-discovery-endpoint-verification'] },
  {
    name: 'Dynamic OP',
    plan: 'oidcc-dynamic-certification-test-plan',
    file: 'dynamic-op.test.ts',
    modules: [
      'oidcc-idtoken-rs256',
      'oidcc-idtoken-unsigned',
      'oidcc-userinfo-rs256',
      'oidcc-ensure-redirect-uri-in-authorization-request',
      'oidcc-redirect-uri-query-OK',
      'oidcc-redirect-uri-query-mismatch',
      'oidcc-redirect-uri-query-added',
      'oidcc-redirect-uri-regfrag',
      'oidcc-discovery-endpoint-verification',
      'oidcc-server',
      'oidcc-registration-logo-uri',
      'oidcc-registration-policy-uri',
      'oidcc-registration-tos-uri',
      'oidcc-registration-jwks-uri',
      'oidcc-registration-sector-uri',
      'oidcc-registration-sector-bad',
      'oidcc-server-rotate-keys',
      'oidcc-refresh-token-rp-key-rotation',
      'oidcc-request-uri-unsigned',
      'oidcc-request-uri-signed-rs256',
      'oidcc-ensure-request-object-with-redirect-uri',
      'oidcc-refresh-token',
      'oidcc-ensure-client-assertion-with-iss-aud-succeeds',
    ],
  },
  { name: 'Form Post OP', plan: 'oidcc-formpost-basic-certification-test-plan', file: 'form-post-op.test.ts', modules: BASIC },
  {
    name: 'RP-Initiated Logout OP',
    plan: 'oidcc-rp-initiated-logout-certification-test-plan',
    file: 'rp-initiated-logout-op.test.ts',
    modules: [
      'oidcc-rp-initiated-logout-discovery-endpoint-verification',
      'oidcc-rp-initiated-logout',
      'oidcc-rp-initiated-logout-bad-post-logout-redirect-uri',
      'oidcc-rp-initiated-logout-modified-id-token-hint',
      'oidcc-rp-initiated-logout-no-id-token-hint',
      'oidcc-rp-initiated-logout-no-params',
      'oidcc-rp-initiated-logout-no-post-logout-redirect-uri',
      'oidcc-rp-initiated-logout-no-state',
      'oidcc-rp-initiated-logout-only-state',
      'oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri',
      'oidcc-rp-initiated-logout-bad-id-token-hint',
    ],
  },
  {
    name: 'Back-Channel Logout OP',
    plan: 'oidcc-backchannel-rp-initiated-logout-certification-test-plan',
    file: 'backchannel-logout-op.test.ts',
    modules: ['oidcc-backchannel-logout-discovery-endpoint-verification', 'oidcc-backchannel-rp-initiated-logout'],
  },
];

const NO_NONE = 'alg none is not offered for ID tokens (id_token_signing_alg_values_supported has asymmetric algorithms only); the suite skips this module when none is not advertised';
const NO_SCOPE = (scope) => `the ${scope} scope is not offered (scopes_supported: openid, offline_access, profile, email); the suite skips this module when the scope is not advertised`;
const NO_UNSIGNED_REQUEST = 'unsigned request objects (alg none) are not accepted (request_object_signing_alg_values_supported has asymmetric algorithms only); the suite skips this module when none is not advertised';
const NO_REQUEST_URI = 'request_uri by reference to a client-hosted document is not supported (request_uri_parameter_supported: false); signed request objects are taken by value or pushed (PAR) instead';

/** Modules that do not apply to this provider, per plan (`*`: every plan that has the module). */
const NOT_APPLICABLE = {
  '*': {
    'oidcc-idtoken-unsigned': NO_NONE,
    'oidcc-scope-address': NO_SCOPE('address'),
    'oidcc-scope-phone': NO_SCOPE('phone'),
    'oidcc-scope-all': 'the address and phone scopes are not offered; the suite skips this module when any of address, email, phone, profile is not advertised',
    'oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported': NO_UNSIGNED_REQUEST,
    'oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported': NO_UNSIGNED_REQUEST,
    'oidcc-claims-essential':
      'by design the claims parameter may only ask for the acr claim of the ID token: a request for name (essential, in userinfo) is refused with invalid_request. The suite expects success, so a certification run reports this module as failed: a product decision, not a defect of these tests',
    'oidcc-request-uri-unsigned': `${NO_REQUEST_URI}; and alg none is not accepted`,
    'oidcc-request-uri-signed-rs256': NO_REQUEST_URI,
    'oidcc-userinfo-rs256': 'signed userinfo responses are not offered (no userinfo_signing_alg_values_supported; the provider\'s jwtUserinfo feature is off)',
    'oidcc-registration-sector-uri': 'pairwise subject identifiers are not offered (subject_types_supported: public), so every sector_identifier_uri is refused at registration, never fetched; the refusal is tested under oidcc-registration-sector-bad',
  },
  'Dynamic OP': {
    'oidcc-discovery-endpoint-verification':
      'the dynamic variant requires response_types_supported to include id_token and token id_token and grant_types_supported to include implicit (OpenID Connect Dynamic Client Registration profile, OIDCD-3); this provider offers the code flow only (RFC 9700 §2.1.2), so a certification run fails this check by design. Everything else of the module passes in config-op.test.ts, plus registration_endpoint in dynamic-op.test.ts (oidcc-server)',
  },
};

/** Modules the product fails today: a bug, reported, kept out of the test files until it is fixed. */
const FAILING = {};

/** Modules not mirrored here yet, and why. */
const NOT_MIRRORED = {
  'Dynamic OP': {
    'oidcc-registration-jwks-uri':
      'needs the client\'s keys at a jwks_uri the server fetches; the provider refuses to fetch from loopback and private addresses (SSRF guard), so no local key server can stand in. A dynamically registered jwks_uri is kept, as are keys registered by value in jwks (which the other Dynamic OP tests use): only the fetch cannot be exercised here',
    'oidcc-refresh-token-rp-key-rotation': 'rotates the client\'s keys at its jwks_uri: same as oidcc-registration-jwks-uri',
  },
};

const lookup = (table, plan, module) => table[plan]?.[module] ?? table['*']?.[module];

/** The module names of a test file's cases (`it('oidcc-…: …')`), its own and those of the local files it imports. */
function modulesIn(file, seen = new Set()) {
  if (seen.has(file)) return new Map();
  seen.add(file);
  const source = readFileSync(`${TESTS}${file}`, 'utf8');
  const found = new Map();
  for (const m of source.matchAll(/\bit\(\s*'(oidcc-[\w-]+): ((?:[^'\\]|\\.)*)'/g)) found.set(m[1], m[2].replaceAll("\\'", "'"));
  for (const m of source.matchAll(/from '\.\/([\w.-]+\.ts)'/g)) for (const [name, title] of modulesIn(m[1], seen)) if (!found.has(name)) found.set(name, title);
  return found;
}

const testFiles = readdirSync(TESTS).filter((f) => f.endsWith('.test.ts'));
const counts = [];
const sections = [];
for (const plan of PLANS) {
  if (!testFiles.includes(plan.file)) throw new Error(`test/conformance/${plan.file} is missing`);
  const tested = modulesIn(plan.file);
  for (const name of tested.keys()) if (!plan.modules.includes(name)) throw new Error(`${plan.file}: ${name} is not a module of the ${plan.name} plan`);
  const tally = { tested: 0, na: 0, failing: 0, missing: 0 };
  const rows = plan.modules.map((module) => {
    const na = lookup(NOT_APPLICABLE, plan.name, module);
    const failing = lookup(FAILING, plan.name, module);
    const missing = lookup(NOT_MIRRORED, plan.name, module);
    if (tested.has(module)) {
      if (na || failing || missing) throw new Error(`${plan.file}: ${module} is tested, and listed as not tested`);
      tally.tested++;
      return `| \`${module}\` | \`${plan.file}\` | pass | ${tested.get(module).replaceAll('|', '/')} |`;
    }
    if (na) {
      tally.na++;
      return `| \`${module}\` | not applicable | not applicable | ${na} |`;
    }
    if (failing) {
      tally.failing++;
      return `| \`${module}\` | not in the test files | **fails** (product bug, reported) | ${failing} |`;
    }
    tally.missing++;
    return `| \`${module}\` | — | not yet mirrored | ${missing ?? 'no test yet'} |`;
  });
  counts.push(`| ${plan.name} | ${plan.modules.length} | ${tally.tested} | ${tally.na} | ${tally.failing} | ${tally.missing} |`);
  sections.push(`## ${plan.name}\n\nPlan \`${plan.plan}\`; tests in [\`test/conformance/${plan.file}\`](../test/conformance/${plan.file}).\n\n| module | test file | status | what the test asserts, or why not |\n| --- | --- | --- | --- |\n${rows.join('\n')}\n`);
}

const doc = `# OpenID conformance map

The OpenID Foundation's [conformance suite](https://gitlab.com/openid/conformance-suite) certifies
OpenID Providers per plan. It cannot run here (a Java service with MongoDB, driven by a person at a
browser), so \`test/conformance/\` mirrors it: one test file per plan, one test per module, named
after the module (\`it('oidcc-codereuse: …')\`), asserting what that module asserts, against a real
server on 127.0.0.1 with a real database (SQLite, and PostgreSQL in CI), with openid-client as the
relying party and jose to check the tokens.

How the tests stand in for the suite:

- The server has an **https issuer** behind a pretend TLS-terminating proxy (\`TRUST_PROXY=1\`,
  \`X-Forwarded-Proto: https\`), so discovery advertises https endpoints, as the suite requires, and
  openid-client talks to it with no plain-http allowance.
- The suite's **static client** is created as an operator would for a certification run:
  confidential, \`client_secret_basic\`, a registered \`post_logout_redirect_uri\`, and exempt from
  PKCE (\`requirePkce: false\`), since the suite sends no \`code_challenge\` except in
  \`oidcc-ensure-request-with-valid-pkce-succeeds\`. Dynamically registered clients cannot be
  exempted, so the Dynamic OP tests (and \`oidcc-server-client-secret-post\`) send PKCE.
- The **Dynamic OP** clients are registered as the suite registers them: \`private_key_jwt\`, with
  the client's public key by value in \`jwks\`; they authenticate with signed client assertions.
- **Registration** needs an initial access token here (\`idp clients initial-access-token create\`),
  which the suite's configuration can carry.
- Where the suite asks for a screenshot (an error page, a logo on the sign-in pages), the test
  asserts the page: its status, that no redirect to the client happened, and what it shows.
- The Form Post OP plan is \`oidcc-formpost-basic-certification-test-plan\`: the Basic OP modules with
  \`response_mode=form_post\` (the same test code, \`basic-plan.ts\`). The form post plans for the
  implicit and hybrid flows, like the Implicit OP and Hybrid OP plans, do not apply as a whole: this
  provider supports \`response_type=code\` only.

Generated by \`npm run conformance\` (\`scripts/conformance-table.mjs\`) from the test names and the
lists in the script; \`node scripts/conformance-table.mjs --check\` (run by
\`test/conformance/table.test.ts\`) fails when this file is out of date.

| plan | modules | tested (pass) | not applicable | fails (bug reported) | not yet mirrored |
| --- | --- | --- | --- | --- | --- |
${counts.join('\n')}

${sections.join('\n')}`;

if (process.argv.includes('--check')) {
  if (readFileSync(DOC, 'utf8') !== doc) {
    console.error('docs/conformance.md is out of date: run npm run conformance');
    process.exit(1);
  }
} else {
  writeFileSync(DOC, doc);
  console.log(counts.join('\n'));
}
