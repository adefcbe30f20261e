/** Settings from the environment shared by the benchmark scripts. */
import type { Argon2Params } from './load.ts';

export function numberFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number ≥ ${min} (got "${raw}")`);
  return value;
}

/** The API's access-token signing algorithm, on ours and on the ceiling (BENCH_SIGNING_ALG). */
export function signingAlgFromEnv(): 'RS256' | 'ES256' | 'EdDSA' {
  const alg = process.env.BENCH_SIGNING_ALG ?? 'RS256';
  if (alg !== 'RS256' && alg !== 'ES256' && alg !== 'EdDSA') throw new Error(`BENCH_SIGNING_ALG: ${alg} is not one of RS256, ES256, EdDSA`);
  return alg;
}

/** argon2id cost (PASSWORD_HASH_*): passed to ours, and used for the argon2 ceiling. */
export function argon2FromEnv(): Argon2Params {
  return {
    memoryKib: numberFromEnv('PASSWORD_HASH_MEMORY_KIB', 19 * 1024, 1),
    iterations: numberFromEnv('PASSWORD_HASH_ITERATIONS', 2, 1),
    parallelism: numberFromEnv('PASSWORD_HASH_PARALLELISM', 1, 1),
  };
}

/** Fails early on a Node that cannot run the TypeScript sources. */
export function checkNode(): void {
  const [major] = process.versions.node.split('.').map(Number);
  if ((major ?? 0) < 22) throw new Error(`Node ${process.version} cannot run TypeScript directly: run the npm script (it uses the Node the project pins)`);
}
