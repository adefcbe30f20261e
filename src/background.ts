import type { Logger } from 'pino';
import type { Leases } from './housekeeping/leases.ts';

/** A periodic task of a running instance. */
export interface Job {
  name: string;
  everySeconds: number;
  /** Seconds from start to the first run (default: one interval). */
  firstAfterSeconds?: number;
  /** Run by one instance at a time: each run first takes the job's lease for one interval. */
  once?: boolean;
  run(): Promise<unknown>;
}

/**
 * The app's periodic work, started when the app is ready and stopped when it closes (src/app.ts).
 * A run never overlaps the previous one of the same job; a job that starts failing is logged once
 * (warn) and once again when it recovers (info), not at every interval.
 */
export function createBackground(jobs: readonly Job[], deps: { leases: Leases; log: Logger }) {
  const timers: NodeJS.Timeout[] = [];
  const running = new Map<string, Promise<boolean>>();
  const failing = new Set<string>();

  async function execute(job: Job): Promise<boolean> {
    if (job.once && !(await deps.leases.acquire(job.name, job.everySeconds))) return false;
    await job.run();
    return true;
  }

  /** Runs a job now; false when another instance holds its lease. Joins a run in progress. */
  function runNow(name: string): Promise<boolean> {
    const job = jobs.find((j) => j.name === name);
    if (!job) throw new Error(`no background job named ${name}`);
    const current = running.get(name);
    if (current) return current;
    const run = execute(job).finally(() => running.delete(name));
    running.set(name, run);
    return run;
  }

  function tick(job: Job) {
    runNow(job.name).then(
      () => {
        if (failing.delete(job.name)) deps.log.info({ job: job.name }, 'background job works again');
      },
      (err: unknown) => {
        if (failing.has(job.name)) return;
        failing.add(job.name);
        deps.log.warn({ err, job: job.name }, 'background job failed; it will retry at every interval');
      },
    );
  }

  return {
    runNow,

    start() {
      if (timers.length) return;
      for (const job of jobs) {
        const first = setTimeout(() => {
          tick(job);
          const every = setInterval(() => tick(job), job.everySeconds * 1000);
          every.unref();
          timers.push(every);
        }, (job.firstAfterSeconds ?? job.everySeconds) * 1000);
        first.unref();
        timers.push(first);
      }
    },

    /** Stops every timer and waits for the runs in progress. */
    async stop() {
      for (const timer of timers.splice(0)) clearTimeout(timer);
      await Promise.allSettled(running.values());
    },
  };
}

export type Background = ReturnType<typeof createBackground>;
