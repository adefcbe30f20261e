import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const LINT = fileURLToPath(new URL('../scripts/lint.mjs', import.meta.url));
const run = (root?: string) => spawnSync(process.execPath, [LINT, ...(root ? [root] : [])], { encoding: 'utf8' });

describe('lint', () => {
  it('passes on the project', () => {
    const res = run();
    expect(res.status, res.stderr).toBe(0);
  });

  it('fails the build on unsafe raw SQL, naming the file and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'idp-lint-'));
    try {
      await mkdir(join(dir, 'src'));
      const method = ['$queryRaw', 'Unsafe'].join('');
      await writeFile(join(dir, 'src', 'bad.ts'), `const ok = 1;\nawait prisma.${method}(\`SELECT * FROM "User" WHERE email = '\${email}'\`);\n`);
      const res = run(dir);
      expect(res.status).toBe(1);
      expect(res.stderr).toContain('src/bad.ts:2: unsafe raw SQL');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
