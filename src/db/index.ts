import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PrismaLibSql } from '@prisma/adapter-libsql';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaClient } from '../generated/prisma/client.ts';

export type { PrismaClient } from '../generated/prisma/client.ts';

export type DatabaseProvider = 'sqlite';

export interface Database {
  readonly prisma: PrismaClient;
  readonly provider: DatabaseProvider;
  /** A fresh driver adapter factory on the same database, for the schema engine. */
  adapterFactory(): SqlMigrationAwareDriverAdapterFactory;
  close(): Promise<void>;
}

export class DatabaseUrlError extends Error {
  override name = 'DatabaseUrlError';
}

/** `file:./data/idp.db` → an absolute file URL, creating the folder on first start. */
function sqliteUrl(url: string): string {
  const path = url.slice('file:'.length);
  if (!path || path === ':memory:') throw new DatabaseUrlError('DATABASE_URL: an in-memory SQLite database cannot be shared; give a file path');
  const absolute = resolve(path);
  mkdirSync(dirname(absolute), { recursive: true });
  return `file:${absolute}`;
}

export async function openDatabase(databaseUrl: string): Promise<Database> {
  if (!databaseUrl.startsWith('file:')) {
    throw new DatabaseUrlError(`DATABASE_URL: unsupported database URL scheme "${databaseUrl.split(':')[0]}:" (use file:./path/to.db for SQLite)`);
  }
  const url = sqliteUrl(databaseUrl);
  const factory = () => new PrismaLibSql({ url });
  const prisma = new PrismaClient({ adapter: factory() });
  // WAL lets readers proceed while one writer commits; the busy timeout makes a writer
  // wait for the lock instead of failing when another process holds it.
  await prisma.$queryRaw`PRAGMA journal_mode = WAL`;
  await prisma.$queryRaw`PRAGMA busy_timeout = 5000`;
  await prisma.$queryRaw`PRAGMA synchronous = NORMAL`;
  await prisma.$queryRaw`PRAGMA foreign_keys = ON`;
  return {
    prisma,
    provider: 'sqlite',
    adapterFactory: factory,
    close: () => prisma.$disconnect(),
  };
}
