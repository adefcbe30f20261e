import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/index.ts';
import { migrate } from '../src/db/migrate.ts';
import { PrismaNodeSqlite } from '../src/db/sqlite-adapter.ts';
import { createTestDatabase, TEST_PROVIDER, type TestDatabase } from './helpers/database.ts';

// What the services rely on from the database layer, checked on the run's database: on SQLite
// that is our node:sqlite driver adapter, which shares one connection among all requests.

let store: TestDatabase;
let db: Database;
beforeAll(async () => {
  store = await createTestDatabase();
  db = await openDatabase(store.url);
  await migrate(db);
});
afterAll(async () => {
  await db?.close();
  await store?.drop();
});

const user = (id: string, email = `${id}@example.com`) => ({ id, email, name: id });

describe('database layer', () => {
  it('keeps a transaction to itself: other requests neither see nor join it, and a rollback leaves nothing', async () => {
    let reached!: () => void;
    const inside = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));

    const transaction = db.prisma.$transaction(async (tx) => {
      await tx.user.create({ data: user('tx-rolled-back') });
      reached();
      await held;
      throw new Error('abort');
    });
    await inside;
    // Another request while the transaction is open: it must not read the uncommitted row.
    const outside = db.prisma.user.findUnique({ where: { id: 'tx-rolled-back' } });
    const outsideWrite = db.prisma.user.create({ data: user('outside-write') });
    // Give both requests time to reach the driver while the transaction is still open.
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    await expect(transaction).rejects.toThrow('abort');
    expect(await outside).toBeNull();
    await outsideWrite;
    expect(await db.prisma.user.findMany({ where: { id: { in: ['tx-rolled-back', 'outside-write'] } }, select: { id: true } })).toEqual([{ id: 'outside-write' }]);
  });

  it('runs concurrent transactions one after another, each committing whole', async () => {
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        db.prisma.$transaction(async (tx) => {
          await tx.user.create({ data: user(`concurrent-${i}`) });
          await new Promise((resolve) => setImmediate(resolve));
          await tx.auditEvent.create({ data: { id: `concurrent-${i}`, actor: 'test', action: 'test.concurrent', target: `concurrent-${i}` } });
        }),
      ),
    );
    expect(await db.prisma.user.count({ where: { id: { startsWith: 'concurrent-' } } })).toBe(8);
    expect(await db.prisma.auditEvent.count({ where: { action: 'test.concurrent' } })).toBe(8);
  });

  it('reports a unique violation as P2002 naming the field, and keeps the first row', async () => {
    await db.prisma.user.create({ data: user('unique-1', 'same@example.com') });
    const duplicate = db.prisma.user.create({ data: user('unique-2', 'same@example.com') });
    await expect(duplicate).rejects.toMatchObject({ code: 'P2002' });
    const err = (await duplicate.catch((e: unknown) => e)) as { meta?: unknown };
    expect(JSON.stringify(err.meta)).toContain('email');
    expect(await db.prisma.user.findMany({ where: { email: 'same@example.com' }, select: { id: true } })).toEqual([{ id: 'unique-1' }]);
  });

  it('round-trips dates to the millisecond, booleans and nulls', async () => {
    const at = new Date('2026-11-23T10:11:12.345Z');
    await db.prisma.auditEvent.create({ data: { id: 'dated', at, actor: 'test', action: 'test.dated', target: null } });
    await db.prisma.user.create({ data: { ...user('flags'), emailVerified: true, disabled: false } });
    expect(await db.prisma.auditEvent.findUnique({ where: { id: 'dated' } })).toMatchObject({ at, target: null });
    expect(await db.prisma.user.findUnique({ where: { id: 'flags' } })).toMatchObject({ emailVerified: true, disabled: false, passwordHash: null });
    expect(await db.prisma.auditEvent.count({ where: { at: { gt: new Date(at.getTime() - 1), lt: new Date(at.getTime() + 1) } } })).toBe(1);
  });

  it.skipIf(TEST_PROVIDER !== 'sqlite')('stores dates on SQLite as ISO-8601 text, the format earlier releases wrote', async () => {
    await db.prisma.auditEvent.create({ data: { id: 'format', at: new Date('2026-01-02T03:04:05.006Z'), actor: 'test', action: 'test.format' } });
    const rows = await db.prisma.$queryRaw<{ kind: string; at: string }[]>`SELECT typeof("at") AS kind, CAST("at" AS TEXT) AS at FROM "AuditEvent" WHERE id = 'format'`;
    expect(rows).toEqual([{ kind: 'text', at: '2026-01-02T03:04:05.006+00:00' }]);
    // A row written in that format by another writer reads back as the same instant.
    await db.prisma.$executeRaw`INSERT INTO "AuditEvent" (id, "at", actor, action) VALUES ('external', '2026-01-02T03:04:05.006+00:00', 'test', 'test.format')`;
    expect((await db.prisma.auditEvent.findUnique({ where: { id: 'external' } }))?.at).toEqual(new Date('2026-01-02T03:04:05.006Z'));
  });

  it.skipIf(TEST_PROVIDER !== 'sqlite')('shares its one SQLite connection: a query from outside an open transaction waits for its end', async () => {
    const adapter = await new PrismaNodeSqlite({ url: store.url }).connect();
    try {
      const query = (sql: string) => ({ sql, args: [], argTypes: [] });
      const tx = await adapter.startTransaction();
      await tx.executeRaw(query(`INSERT INTO "AuditEvent" (id, "at", actor, action) VALUES ('in-tx', '2026-01-01T00:00:00.000+00:00', 'test', 'test.tx')`));
      const outside = adapter.queryRaw(query(`SELECT count(*) AS n FROM "AuditEvent" WHERE id = 'in-tx'`));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await tx.rollback();
      expect((await outside).rows).toEqual([[0]]);
    } finally {
      await adapter.dispose();
    }
  });
});
