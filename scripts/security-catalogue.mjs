// Regenerates the table of test/security/CATALOGUE.md from the test names (npm run catalogue).
// Every case is named "SEC-<AREA>-<nn> <expected behaviour>"; parameterized variants share an id.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// One reference line per area, in the order of the catalogue. ASVS ids are ASVS 5.0.
const REFERENCES = {
  'SEC-RU': 'RFC 9700 §4.1.3; RFC 6749 §3.1.2; ASVS V10.4.1; oidcc-ensure-registered-redirect-uri',
  'SEC-PK': 'RFC 9700 §2.1.1, §4.8; RFC 7636 §4.4–4.6; ASVS V10.4.6; oidcc-ensure-pkce-*',
  'SEC-RM': 'OAuth 2.0 Form Post Response Mode; OAuth 2.0 Multiple Response Types §2; RFC 9207',
  'SEC-AZ': 'RFC 9700 §2.1, §4.1; RFC 9207; RFC 8707; ASVS V10.4.4; oidcc-ensure-request-*',
  'SEC-CR': 'RFC 9700 §2.1.1, §4.5; RFC 6749 §4.1.2–4.1.3; ASVS V10.4.2, V10.4.3; oidcc-codereuse*',
  'SEC-CA': 'RFC 6749 §2.3, §5.2; RFC 9700 §2.5; ASVS V10.4.10',
  'SEC-TE': 'RFC 6749 §3.2, §5.1; RFC 8707 §2.2; ASVS V4.1.1',
  'SEC-RT': 'RFC 9700 §2.2.2, §4.14; RFC 6749 §6; RFC 7009; ASVS V10.4.5, V10.4.8; oidcc-refresh-token',
  'SEC-GR': 'RFC 9700 §2.1.2, §2.4; ASVS V10.4.4',
  'SEC-AA': 'RFC 8707 §2; RFC 9068 §4; RFC 6749 §3.3; ASVS V8.2.1, V8.2.2, V10.4.11',
  'SEC-JWT': 'RFC 9068 §4; RFC 8725 §2–3; RFC 9700 §2.2; ASVS V9.1.1–V9.1.3, V9.2.1–V9.2.3, V10.3.1',
  'SEC-IR': 'RFC 7662 §2.1, §4; RFC 7009 §2.1; RFC 9700 §2.2.2',
  'SEC-UI': 'RFC 6750 §2.3, §3.1; OIDC Core §5.3; oidcc-userinfo-*',
  'SEC-LO': 'OpenID RP-Initiated Logout 1.0 §2–3; oidcc-rp-initiated-logout-*; ASVS V10.6.2',
  'SEC-CS': 'RFC 9700 §4.4.1 (login CSRF); ASVS V3.5.1–V3.5.3; OWASP CSRF Prevention Cheat Sheet',
  'SEC-SF': 'ASVS V7.2.4; OWASP Session Management Cheat Sheet (session fixation)',
  'SEC-CK': 'ASVS V3.3.1–V3.3.4; RFC 6265bis §4.1.3 (cookie prefixes)',
  'SEC-HD': 'RFC 9700 §4.16; ASVS V3.4.1–V3.4.6; ASVS V14.3.2 (no-store)',
  'SEC-CO': 'ASVS V3.4.2, V3.5.2; Fetch Standard (CORS)',
  'SEC-BF': 'ASVS V6.3.1, V6.3.8; NIST SP 800-63B §5.2.2',
  'SEC-PW': 'ASVS V6.2.1–V6.2.4, V11.4.2; NIST SP 800-63B §5.1.1.2',
  'SEC-MI': 'ASVS V4.1.1, V2.2.1; RFC 6749 §3',
  'SEC-UN': 'ASVS V6.2.7; NIST SP 800-63B §5.1.1.2; RFC 8265',
  'SEC-IN': 'ASVS V1.2.4, V2.2.1',
  'SEC-RS': 'OWASP API Security Top 10 API4:2023; CWE-400, CWE-770; RFC 9110 §15.5.9',
  'SEC-OB': 'OWASP API Security Top 10 API8:2023; CWE-200',
  'SEC-PX': 'RFC 7239 §8.1; OpenID Connect Discovery 1.0 §3–4; RFC 8414 §3; CWE-348, CWE-644',
  'SEC-RG': 'RFC 7591 §2, §3.2.2; RFC 7592; RFC 9700 §2.1, §4.1.1; ASVS V10.4.1, V10.4.4',
  'SEC-FD': 'OIDC Core §3.1.3.7, §15.5.2; RFC 9700 §4.7; ASVS V10.5.1–V10.5.3',
  'SEC-LG': 'ASVS V16.2.5',
  'SEC-CN': 'OIDC Core §3.1.2.4; RFC 9700 §2.1, §4.1; RFC 7591 §5; RFC 7009 §2.1',
  'SEC-ML': 'ASVS V16.2.5, V14.2.4; OWASP Logging Cheat Sheet (no secrets in logs)',
  'SEC-PR': 'OWASP Forgot Password Cheat Sheet; ASVS V6.4.1–V6.4.3, V6.3.8; RFC 9700 §4.11',
  'SEC-AP': 'ASVS V3.5.1–V3.5.3, V8.2.2, V7.5.1–V7.5.2, V3.3.1–V3.3.4; OWASP Unvalidated Redirects and Forwards',
  'SEC-PG': 'RFC 9700 §4.11; RFC 6749 §10.12; ASVS V3.2.2, V3.4.3, V1.2.1',
  'SEC-SU': 'ASVS V6.3.7, V2.4.1, V3.5.1; Initiating User Registration via OpenID Connect 1.0; OWASP Authentication Cheat Sheet (account enumeration)',
  'SEC-EV': 'ASVS V6.4.1–V6.4.3, V6.6.2, V16.2.5; NIST SP 800-63B §5.1.3; OWASP Forgot Password Cheat Sheet (single-use, expiring, hashed tokens)',
  'SEC-IV': 'ASVS V6.4.1, V3.5.1, V8.2.1; OWASP Forgot Password Cheat Sheet (single-use, expiring, hashed tokens)',
  'SEC-RB': 'ASVS V8.2.1, V8.2.2, V8.3.1; OWASP Authorization Cheat Sheet (deny by default, least privilege); RFC 9068 §7.2',
  'SEC-AC': 'ASVS V3.4.3, V8.2.1, V10.1.1; OAuth 2.0 for Browser-Based Applications §6 (no tokens in web storage), §7 (CSP); RFC 9700 §4.7 (state and PKCE on the redirect)',
  'SEC-MF': 'RFC 6238 §5.2 (validation window, one use per code); RFC 8176 (amr); ASVS V6.5.1, V6.5.2, V6.5.4, V6.5.5; NIST SP 800-63B §5.1.4.2, §5.2.2 (rate limiting); OpenID Connect Core §3.1.2.1, §5.5.1.1 (step-up: acr_values, essential acr)',
  'SEC-WA': 'W3C Web Authentication Level 3 §7.1, §7.2 (challenge, origin, RP ID, user verification, signature counter, user handle); ASVS V6.5.1, V6.5.6; NIST SP 800-63B §5.1.8, §5.2.8 (replay resistance); RFC 8176 (amr)',
  'SEC-SC': 'RFC 9126 §5, §6 (PAR required); RFC 9449 §5, §10, §11.1 (DPoP-bound access and refresh tokens); RFC 9700 §2.2 (sender-constrained tokens)',
  'SEC-JAR': 'RFC 9101 §4–6, §10.5 (signed request objects, by value and pushed; alg none refused); RFC 9126 §3',
  'SEC-BL': 'OpenID Connect Back-Channel Logout 1.0 §2.4–2.6, §4; OWASP Server-Side Request Forgery Prevention',
  'SEC-DV': 'RFC 8628 §3.3, §3.5, §5.1–5.2 (user code brute force, remote phishing), §3.4 (device code bound to its client); RFC 6749 §5.2; ASVS V6.3.1',
  'SEC-ES': 'ASVS V16.5.2, V16.5.3 (fail securely when a resource is unavailable); CWE-636 (not failing securely)',
  'SEC-CL': 'RFC 9068 §2.2; OpenID Connect Core §2, §5.1; RFC 7591 §2 (admin-only metadata)',
};

const listing = execFileSync(process.execPath, [`${root}node_modules/vitest/vitest.mjs`, 'list', 'test/security', '--project', 'sqlite'], {
  cwd: root,
  encoding: 'utf8',
  // Cases that only run with Redis are listed all the same.
  env: { ...process.env, TEST_REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
});
const entries = new Map();
for (const line of listing.split('\n')) {
  const m = /(test\/security\/[\w.-]+)\s*>.*?(SEC-[A-Z]+-\d+)\s+(.*)$/.exec(line.trim());
  if (!m) continue;
  const [, file, id, title] = m;
  if (!entries.has(id)) entries.set(id, { file: file.split('/').pop(), titles: [] });
  entries.get(id).titles.push(title.replaceAll('|', '/'));
}
const area = (id) => id.replace(/-\d+$/, '');
const order = Object.keys(REFERENCES);
const rank = (id) => [order.indexOf(area(id)) === -1 ? order.length : order.indexOf(area(id)), Number(id.split('-').pop())];
const sorted = [...entries].sort(([a], [b]) => {
  const [ra, na] = rank(a);
  const [rb, nb] = rank(b);
  return ra - rb || na - nb;
});
const rows = sorted.map(([id, { file, titles }]) => {
  const text = titles.length === 1 ? titles[0] : `${titles[0]} (and ${titles.length - 1} more: ${titles.slice(1).join('; ')})`;
  return `| ${id} | ${text} | ${titles.length} | \`${file}\` | ${REFERENCES[area(id)] ?? ''} |`;
});
const cases = [...entries.values()].reduce((n, e) => n + e.titles.length, 0);

const path = `${root}test/security/CATALOGUE.md`;
const doc = readFileSync(path, 'utf8');
const [head, rest] = doc.split('| id | expected behaviour | cases | file | reference |\n| --- | --- | --- | --- | --- |\n');
const tail = rest.slice(rest.indexOf('\n## Areas'));
writeFileSync(path, `${head.replace(/\*\*\d+ entries, \d+ cases\*\*/, `**${entries.size} entries, ${cases} cases**`)}| id | expected behaviour | cases | file | reference |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n${tail}`);
console.log(`${entries.size} entries, ${cases} cases`);
