import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIOME = join(ROOT, 'node_modules', '.bin', 'biome');

// The project's lint configuration, applied to files written for the test in a scratch copy.
let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'idp-lint-'));
  const config = JSON.parse(await readFile(join(ROOT, 'biome.json'), 'utf8')) as Record<string, unknown>;
  delete config.$schema;
  await writeFile(join(scratch, 'biome.json'), JSON.stringify({ ...config, vcs: { enabled: false } }));
  await cp(join(ROOT, 'scripts', 'lint'), join(scratch, 'scripts', 'lint'), { recursive: true });
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

async function lint(path: string, source: string) {
  const file = join(scratch, path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, source);
  const res = spawnSync(BIOME, ['lint', '--max-diagnostics=20', path], { cwd: scratch, encoding: 'utf8' });
  await rm(file);
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

describe('lint', () => {
  it('passes on the project: Biome (import boundaries, unsafe raw SQL) and knip (exports nobody imports)', () => {
    const res = spawnSync('npm', ['run', '--silent', 'lint'], { cwd: ROOT, encoding: 'utf8' });
    expect(res.status, `${res.stdout}${res.stderr}`).toBe(0);
  });

  it('fails on unsafe raw SQL, naming the file and line', async () => {
    const method = ['$queryRaw', 'Unsafe'].join('');
    const res = await lint('src/users/bad.ts', `declare const prisma: { ${method}(sql: string): Promise<unknown> };\nconst email = 'x';\nawait prisma.${method}(\`SELECT * FROM "User" WHERE email = '\${email}'\`);\n`);
    expect(res.status).toBe(1);
    expect(res.output).toContain('src/users/bad.ts:3');
    expect(res.output).toContain('Unsafe raw SQL');
  });

  it.each([
    ['oidc/ importing http/', 'src/oidc/bad.ts', '../http/views.ts'],
    ['oidc/ importing the service wiring', 'src/oidc/bad.ts', '../services.ts'],
    ['a domain service importing oidc/', 'src/users/bad.ts', '../oidc/provider.ts'],
    ['a domain service importing http/', 'src/clients/bad.ts', '../http/errors.ts'],
    ['http/ importing the database layer', 'src/http/bad.ts', '../db/index.ts'],
    ['http/ importing the service wiring', 'src/http/admin/bad.ts', '../../services.ts'],
    ['the foundation importing a service', 'src/lib/bad.ts', '../users/service.ts'],
  ])('fails on an import that runs upward: %s', async (_name, path, target) => {
    const res = await lint(path, `import { something } from '${target}';\nexport const value = something;\n`);
    expect(res.status).toBe(1);
    expect(res.output).toContain('noRestrictedImports');
  });

  it('accepts the imports that run downward (control)', async () => {
    const res = await lint('src/oidc/good.ts', `import { OIDC_SCOPES } from '../lib/scopes.ts';\nimport type { UserService } from '../users/service.ts';\nexport const scopes: [typeof OIDC_SCOPES, UserService | undefined] = [OIDC_SCOPES, undefined];\n`);
    expect(res.status, res.output).toBe(0);
  });
});
