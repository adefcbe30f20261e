// Regenerates the table of test/security/CATALOGUE.md from the test names (npm run catalogue).
// Every case is named "SEC-<AREA>-<nn> <expected behaviour>"; parameterized variants share an id.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const REFERENCES = {
  'SEC-AZ': 'RFC 9700 §2.1, §4.1; RFC 9207; oidcc-ensure-request-*',
  'SEC-CR': 'RFC 9700 §2.1.1, §4.5; RFC 7636 §4.6; RFC 6749 §4.1.3',
  'SEC-JWT': 'RFC 9068 §4; RFC 8725 §2–3; RFC 9700 §2.2; ASVS V3.5.3',
  'SEC-CA': 'RFC 6749 §2.3, §5.2; RFC 9700 §2.5; ASVS V51.3',
  'SEC-TE': 'RFC 6749 §3.2, §5.1; ASVS V51.2',
  'SEC-RT': 'RFC 9700 §2.2.2, §4.14; RFC 6749 §6; oidcc-refresh-token',
  'SEC-UI': 'RFC 6750 §2.3, §3.1; OIDC Core §5.3; oidcc-userinfo-*',
  'SEC-GR': 'RFC 9700 §2.1.2, §2.4',
  'SEC-LO': 'OpenID RP-Initiated Logout 1.0 §2–3; oidcc-rp-initiated-logout-*',
  'SEC-IN': 'ASVS V5.3.4, V5.1.3',
  'SEC-UN': 'NIST SP 800-63B §5.1.1.2; ASVS V2.1',
  'SEC-MI': 'RFC 6749 §3; ASVS V5.1.4',
};

const listing = execFileSync(process.execPath, [`${root}node_modules/vitest/vitest.mjs`, 'list', 'test/security', '--project', 'sqlite'], { cwd: root, encoding: 'utf8' });
const entries = new Map();
for (const line of listing.split('\n')) {
  const m = /(test\/security\/[\w.-]+)\s*>.*?(SEC-[A-Z]+-\d+)\s+(.*)$/.exec(line.trim());
  if (!m) continue;
  const [, file, id, title] = m;
  if (!entries.has(id)) entries.set(id, { file: file.split('/').pop(), titles: [] });
  entries.get(id).titles.push(title.replaceAll('|', '/'));
}
const rows = [...entries].map(([id, { file, titles }]) => {
  const text = titles.length === 1 ? titles[0] : `${titles[0]} (and ${titles.length - 1} more: ${titles.slice(1).join('; ')})`;
  return `| ${id} | ${text} | ${titles.length} | \`${file}\` | ${REFERENCES[id.replace(/-\d+$/, '')] ?? ''} |`;
});
const cases = [...entries.values()].reduce((n, e) => n + e.titles.length, 0);

const path = `${root}test/security/CATALOGUE.md`;
const doc = readFileSync(path, 'utf8');
const [head, rest] = doc.split('| id | expected behaviour | cases | file | reference |\n| --- | --- | --- | --- | --- |\n');
const tail = rest.slice(rest.indexOf('\n## Covered elsewhere'));
writeFileSync(path, `${head.replace(/\*\*\d+ entries, \d+ cases\*\*/, `**${entries.size} entries, ${cases} cases**`)}| id | expected behaviour | cases | file | reference |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n${tail}`);
console.log(`${entries.size} entries, ${cases} cases`);
