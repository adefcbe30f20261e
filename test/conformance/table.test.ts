import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('docs/conformance.md', () => {
  it('is what npm run conformance writes from the test names (every module of the six plans accounted for)', () => {
    const res = spawnSync(process.execPath, ['scripts/conformance-table.mjs', '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(res.status, `${res.stdout}${res.stderr}`).toBe(0);
  });
});
