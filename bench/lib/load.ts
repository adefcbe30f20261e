import autocannon from 'autocannon';
import argon2 from 'argon2';

export interface Stats {
  /** Successful (2xx; for flows: completed) operations per second. */
  rps: number;
  ok: number;
  failed: number;
  errors: number;
  seconds: number;
  /** Latency in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  statusCodes: Record<string, number>;
  /** The run stopped early because the pre-minted pool ran out. */
  poolExhausted?: boolean;
  /** What autocannon itself reported (it rounds latencies to whole milliseconds). */
  autocannon?: { rpsAverage: number; p50: number; p99: number };
}

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Collects every latency (autocannon's own histogram has 1 ms resolution, too coarse here). The
 * interleaved scenarios pass one to every counted slice, so that p50 and p99 are over all of them.
 */
export class Recorder {
  private latencies = new Float64Array(1 << 16);
  private count = 0;
  ok = 0;
  failed = 0;
  statusCodes: Record<string, number> = {};

  record(ms: number, success: boolean, status: string) {
    if (this.count === this.latencies.length) {
      const bigger = new Float64Array(this.latencies.length * 2);
      bigger.set(this.latencies);
      this.latencies = bigger;
    }
    this.latencies[this.count++] = ms;
    if (success) this.ok++;
    else this.failed++;
    this.statusCodes[status] = (this.statusCodes[status] ?? 0) + 1;
  }

  stats(seconds: number, errors: number): Stats {
    const sorted = this.latencies.slice(0, this.count).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    const round = (v: number) => Math.round(v * 100) / 100;
    return {
      rps: round(this.ok / seconds),
      ok: this.ok,
      failed: this.failed,
      errors,
      seconds: round(seconds),
      p50: round(percentile(sorted, 50)),
      p90: round(percentile(sorted, 90)),
      p99: round(percentile(sorted, 99)),
      max: round(sorted[sorted.length - 1] ?? 0),
      mean: round(this.count ? sum / this.count : 0),
      statusCodes: this.statusCodes,
    };
  }
}

export interface HttpLoad {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Per-request setup (e.g. take the next code from a pool); returning null means "pool empty". */
  next?: () => { body?: string; headers?: Record<string, string> } | null;
  onResponse?: (status: number, body: string) => void;
}

export interface LoadOptions {
  connections: number;
  seconds: number;
  /** Every response is recorded here as well (the slices of an interleaved scenario, pooled). */
  pooled?: Recorder;
}

/** One autocannon run at fixed concurrency for a fixed time. */
export function runHttp(load: HttpLoad, opts: LoadOptions): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const recorder = new Recorder();
    const base = new URL(load.url);
    const path = `${base.pathname}${base.search}`;
    let exhausted = false;
    let instance: autocannon.Instance | undefined;

    const request: autocannon.Request = { method: load.method ?? 'GET', path, headers: load.headers ?? {}, ...(load.body !== undefined ? { body: load.body } : {}) };
    if (load.next) {
      const next = load.next;
      request.setupRequest = (req) => {
        const item = exhausted ? null : next();
        if (!item) {
          // autocannon cannot skip a request: stop the run, and send one that is not counted.
          if (!exhausted) {
            exhausted = true;
            setImmediate(() => instance?.stop());
          }
          return { ...req, method: 'GET', path: '/.well-known/openid-configuration', body: '', headers: { 'x-bench': 'pool-exhausted' } };
        }
        return { ...req, ...(item.body !== undefined ? { body: item.body } : {}), headers: { ...req.headers, ...item.headers } };
      };
    }
    if (load.onResponse) request.onResponse = load.onResponse;

    const started = performance.now();
    let stoppedAt = 0;
    instance = autocannon(
      { url: `${base.protocol}//${base.host}`, connections: opts.connections, duration: opts.seconds, timeout: 30, requests: [request] },
      (err, result) => {
        if (err) return reject(err);
        const seconds = ((stoppedAt || performance.now()) - started) / 1000;
        const stats = recorder.stats(seconds, result.errors + result.timeouts);
        stats.autocannon = { rpsAverage: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
        if (exhausted) stats.poolExhausted = true;
        resolve(stats);
      },
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (exhausted && !stoppedAt) stoppedAt = performance.now();
      if (exhausted) return;
      const success = statusCode >= 200 && statusCode < 300;
      recorder.record(responseTime, success, String(statusCode));
      opts.pooled?.record(responseTime, success, String(statusCode));
    });
  });
}

/**
 * A custom load loop: `workers` concurrent loops each running `op` until the time is up;
 * every completed op is one unit (e.g. one whole browser-less sign-in).
 */
export async function runLoop(op: () => Promise<void>, opts: { workers: number; seconds: number; pooled?: Recorder }): Promise<Stats> {
  const recorder = new Recorder();
  const started = performance.now();
  const deadline = started + opts.seconds * 1000;
  let errors = 0;
  let firstError: unknown;
  await Promise.all(
    Array.from({ length: opts.workers }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await op();
          const ms = performance.now() - t0;
          recorder.record(ms, true, 'ok');
          opts.pooled?.record(ms, true, 'ok');
        } catch (err) {
          errors++;
          firstError ??= err;
          const ms = performance.now() - t0;
          recorder.record(ms, false, 'error');
          opts.pooled?.record(ms, false, 'error');
        }
      }
    }),
  );
  const stats = recorder.stats((performance.now() - started) / 1000, errors);
  if (errors && stats.ok === 0) throw firstError;
  return stats;
}

export interface Argon2Params {
  memoryKib: number;
  iterations: number;
  parallelism: number;
}

/**
 * The password-login ceiling's unit of work: one argon2id verification with our parameters (run
 * many at once, argon2 runs on libuv's thread pool, so it spreads over the cores).
 */
export async function argon2Verifier(params: Argon2Params, password: string): Promise<() => Promise<void>> {
  const hash = await argon2.hash(password, { type: argon2.argon2id, memoryCost: params.memoryKib, timeCost: params.iterations, parallelism: params.parallelism });
  return async () => {
    if (!(await argon2.verify(hash, password))) throw new Error('argon2 verify failed');
  };
}
