// Project rules that a type checker cannot enforce. Fails (exit 1) listing every violation.
//  - No unsafe raw SQL: the "Unsafe" raw query methods of Prisma build SQL from strings;
//    the tagged-template $queryRaw / $executeRaw bind parameters instead.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// The project root, or another folder given as the first argument (the tests use one).
const root = process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url));
const RULES = [{ pattern: new RegExp(['\\$queryRaw', 'Unsafe|\\$executeRaw', 'Unsafe'].join('')), message: 'unsafe raw SQL: use the tagged-template $queryRaw/$executeRaw' }];
const SKIP = new Set(['node_modules', 'generated', '.git', 'data']);

function* files(dir) {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) yield path;
  }
}

const violations = [];
for (const dir of ['src', 'scripts', 'test', 'bench', 'bin']) {
  let entries;
  try {
    entries = [...files(join(root, dir))];
  } catch {
    continue;
  }
  for (const file of entries) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      for (const rule of RULES) if (rule.pattern.test(line)) violations.push(`${relative(root, file)}:${i + 1}: ${rule.message}`);
    });
  }
}
if (violations.length) {
  console.error(violations.join('\n'));
  process.exit(1);
}
console.log('lint: ok');
