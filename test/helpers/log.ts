import { Writable } from 'node:stream';

/** A log destination for a server under test (`logDestination`) that keeps every line written to it. */
export function captureLog() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  /** The lines as pino wrote them (JSON). */
  const entries = () => lines.map((line) => JSON.parse(line) as { level: number; msg: string });
  return { lines, destination, entries };
}
