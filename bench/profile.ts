/**
 * Summarises V8 CPU profiles written by `BENCH_CPU_PROF=1 npm run bench` (one per server
 * process, under bench/results/profiles/<server>/): where the CPU time went, by package or
 * source file and by function (self time).
 *
 *   node bench/profile.ts bench/results/profiles/ours-sqlite [top=25]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './lib/proc.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<package> (scoped packages keep their scope), src/<file>, node:<module>, or a V8 category. */
function owner(url: string, name: string): string {
  if (!url) return `(${name || 'anonymous'})`.replace(/^\(\((.*)\)\)$/, '($1)');
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (path.startsWith('node:')) return path;
  return relative(ROOT, path);
}

function summarise(file: string, top: number) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });

  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, micros] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += micros;
      continue;
    }
    total += micros;
    const o = owner(url, functionName);
    byOwner.set(o, (byOwner.get(o) ?? 0) + micros);
    const f = `${functionName || '(anonymous)'} ${url ? `${owner(url, functionName)}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(f, (byFunction.get(f) ?? 0) + micros);
  }
  // Inclusive time (the function and what it calls) of our own functions, src/ only; a
  // recursive frame is counted once per stack.
  const inclusive = new Map<string, number>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  for (const [id, micros] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame;
      if (!url.includes('/src/') || url.includes('/node_modules/') || url.includes('/generated/')) continue;
      const key = `${functionName || '(anonymous)'} ${owner(url, functionName)}:${lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + micros);
    }
  }
  const pct = (v: number) => `${((100 * v) / total).toFixed(1).padStart(5)} %`;
  const list = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `  ${pct(v)}  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`)
      .join('\n');
  console.log(`\n${relative(ROOT, file)}: ${(total / 1e6).toFixed(1)} s busy, ${(idle / 1e6).toFixed(1)} s idle`);
  console.log(`by package / file (self time):\n${list(byOwner)}`);
  console.log(`by function (self time):\n${list(byFunction)}`);
  if (inclusive.size) console.log(`our functions (src/), inclusive of what they call:\n${list(inclusive)}`);
}

const [target = join(ROOT, 'bench', 'results', 'profiles'), topArg = '25'] = process.argv.slice(2);
const files = statSync(target).isDirectory()
  ? readdirSync(target, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(target, f))
  : [target];
for (const file of files) summarise(file, Number(topArg));
