import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** The repository root: the servers and the CLI run from its sources. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const children = new Set<ChildProcess>();

/** A free port on 127.0.0.1, left closed. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface ServerProcess {
  name: string;
  url: string;
  pid: number;
  /** Milliseconds from spawn to the first 200 from GET /readyz. */
  readyMs: number;
  /** The last lines the process wrote (for error messages). */
  output(): string;
  stop(): Promise<void>;
}

function keepTail(sink: { text: string }, chunk: Buffer) {
  sink.text = (sink.text + chunk.toString('utf8')).slice(-20_000);
}

/**
 * Spawns `node <args>` (the Node running the harness) and waits until GET <url>/readyz answers
 * 200; the time from spawn to that answer is the start-to-ready time.
 */
export async function startServer(opts: { name: string; args: string[]; env: Record<string, string>; url: string; cwd: string; timeoutMs?: number }): Promise<ServerProcess> {
  const sink = { text: '' };
  const started = performance.now();
  const child = spawn(process.execPath, opts.args, { cwd: opts.cwd, env: baseEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout!.on('data', (d: Buffer) => keepTail(sink, d));
  child.stderr!.on('data', (d: Buffer) => keepTail(sink, d));
  let exited: number | string | null = null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = code ?? signal ?? 'unknown';
      children.delete(child);
      resolve();
    }),
  );

  const deadline = started + (opts.timeoutMs ?? 60_000);
  let readyMs = -1;
  while (readyMs < 0) {
    if (exited !== null) throw new Error(`${opts.name} exited (${exited}) before it was ready:\n${sink.text}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${opts.name} was not ready within ${opts.timeoutMs ?? 60_000} ms:\n${sink.text}`);
    }
    try {
      const res = await fetch(`${opts.url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) readyMs = performance.now() - started;
    } catch {
      // not listening yet
    }
    if (readyMs < 0) await sleep(5);
  }

  return {
    name: opts.name,
    url: opts.url,
    pid: child.pid!,
    readyMs,
    output: () => sink.text,
    async stop() {
      if (exited !== null) return;
      // A server the benchmark paused (SIGSTOP) would not act on SIGTERM until continued.
      signalTree(child.pid!, 'SIGCONT');
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(killer);
    },
  };
}

/** Only what a server needs from the harness's environment: no DATABASE_URL or PORT leaks in. */
function baseEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/idp.js <args>` with the server's environment (the CLI talks to the database, not over HTTP). */
export function runCli(args: string[], env: Record<string, string>, cwd: string, stdin = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${ROOT}bin/idp.js`, ...args], { cwd, env: baseEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

/** Last resort (process exit): every child still running is killed. */
export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL') {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}


// ---- resident memory

/** VmRSS of one process in bytes (0 when it is gone). */
function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The process and all its descendants (cluster workers of a WORKERS>1 supervisor). */
function processTree(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/**
 * Sends `signal` to the process and its descendants: SIGSTOP pauses a server (its background
 * work included) while another one is measured, SIGCONT resumes it.
 */
export function signalTree(pid: number, signal: 'SIGSTOP' | 'SIGCONT'): void {
  for (const p of processTree(pid)) {
    try {
      process.kill(p, signal);
    } catch {
      // exited meanwhile
    }
  }
}

/** Resident memory of the server's process tree, in bytes. */
export function treeRss(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + rssOf(p), 0);
}

/** Resident memory of each process of the tree (the root first), in bytes. */
export function treeRssByProcess(pid: number): number[] {
  return processTree(pid).map(rssOf);
}

/** Samples the tree's RSS every `intervalMs` until stopped; returns the maximum seen. */
export function sampleRss(pid: number, intervalMs = 250) {
  const tree = processTree(pid);
  let max = tree.reduce((sum, p) => sum + rssOf(p), 0);
  const timer = setInterval(() => {
    max = Math.max(max, tree.reduce((sum, p) => sum + rssOf(p), 0));
  }, intervalMs);
  return {
    stop(): number {
      clearInterval(timer);
      return Math.max(max, tree.reduce((sum, p) => sum + rssOf(p), 0));
    },
  };
}

/** CPU time (user + system) the server's process tree has used so far, in ms (USER_HZ = 100 on Linux). */
export function treeCpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks * 10;
}
