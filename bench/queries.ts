/**
 * CPU per database statement through Prisma on SQLite, the unit cost behind every number of the
 * main benchmark: the same lookups and writes the provider's adapter makes, as model queries and
 * as tagged raw statements, on a fresh database holding `BENCH_QUERY_ROWS` artifacts.
 *
 *   npm run bench:queries
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArtifactStore } from '../src/artifacts/store.ts';
import { openDatabase } from '../src/db/index.ts';
import { migrate } from '../src/db/migrate.ts';

const ROWS = Number(process.env.BENCH_QUERY_ROWS ?? 20_000);
const OPS = Number(process.env.BENCH_QUERY_OPS ?? 20_000);
const CONCURRENCY = 16;

const dir = await mkdtemp(join(tmpdir(), 'idp-bench-queries-'));
const db = await openDatabase(`file:${join(dir, 'idp.db')}`);
try {
  await migrate(db);
  const { prisma } = db;
  const ids = Array.from({ length: ROWS }, () => randomBytes(32).toString('base64url'));
  const payload = JSON.stringify({ kind: 'AccessToken', scope: 'openid profile email', claims: randomBytes(300).toString('base64') });
  for (let i = 0; i < ids.length; i += 500) {
    await prisma.oidcPayload.createMany({
      data: ids.slice(i, i + 500).map((id) => ({ model: 'AccessToken', id, payload, accountId: 'account', clientId: 'client', expiresAt: new Date(Date.now() + 3600_000) })),
    });
  }

  const select = { payload: true, expiresAt: true, consumedAt: true } as const;
  // Artifact inserts as the provider's adapter makes them, each under a new id: NULL uid, userCode and grantId.
  const store = createArtifactStore(prisma);
  let seq = 0;
  const cases: [string, (id: string) => Promise<unknown>][] = [
    ['model findUnique (select 3 columns)', (id) => prisma.oidcPayload.findUnique({ where: { model_id: { model: 'AccessToken', id } }, select })],
    ['model findFirst (select 3 columns)', (id) => prisma.oidcPayload.findFirst({ where: { model: 'AccessToken', id }, select })],
    ['tagged $queryRaw select', (id) => prisma.$queryRaw`SELECT "payload", "expiresAt", "consumedAt" FROM "OidcPayload" WHERE "model" = ${'AccessToken'} AND "id" = ${id}`],
    ['model updateMany (consume)', (id) => prisma.oidcPayload.updateMany({ where: { model: 'AccessToken', id, consumedAt: null }, data: { payload } })],
    ['tagged $executeRaw update', (id) => prisma.$executeRaw`UPDATE "OidcPayload" SET "payload" = ${payload} WHERE "model" = ${'AccessToken'} AND "id" = ${id} AND "consumedAt" IS NULL`],
    ['model upsert (select id)', (id) => prisma.oidcPayload.upsert({ where: { model_id: { model: 'RefreshToken', id } }, create: { model: 'RefreshToken', id, payload }, update: { payload }, select: { id: true } })],
    ['artifact insert: AccessToken (client_credentials)', (id) => store.save('AccessToken', `${id}.${seq++}`, { accountId: 'account', clientId: 'client', scope: 'api' }, 3600)],
    ['artifact insert: Interaction (no lookup column)', (id) => store.save('Interaction', `${id}.${seq++}`, { prompt: 'login', params: { scope: 'openid' } }, 3600)],
    ['tagged $executeRaw upsert', (id) => prisma.$executeRaw`INSERT INTO "OidcPayload" ("model", "id", "payload") VALUES (${'RefreshToken'}, ${id}, ${payload}) ON CONFLICT ("model", "id") DO UPDATE SET "payload" = excluded."payload"`],
  ];

  console.log(`SQLite, ${ROWS} rows, ${OPS} operations per case at ${CONCURRENCY} at once, after as many to warm up\n`);
  console.log('| statement | CPU ms per statement |\n| --- | --- |');
  for (const [name, run] of cases) {
    const pass = async () => {
      let next = 0;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < OPS) await run(ids[next++ % ids.length]!);
      }));
    };
    await pass();
    const before = process.cpuUsage();
    await pass();
    const used = process.cpuUsage(before);
    console.log(`| ${name} | ${((used.user + used.system) / 1000 / OPS).toFixed(3)} |`);
  }
} finally {
  await db.close();
  await rm(dir, { recursive: true, force: true });
}
