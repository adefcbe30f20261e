import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { sqltag, type Sql } from '@prisma/client/runtime/client';
import { isDatabaseUnavailable } from '../lib/db-errors.ts';
import { StartupError } from '../lib/errors.ts';
import type { PrismaClient } from '../generated/sqlite/client.ts';
import type { Dialect } from './schema.ts';

// Both generated clients have the same models and API; the SQLite one names the type.
export type { PrismaClient } from '../generated/sqlite/client.ts';
export type { Client, FederatedIdentity, IdentityProvider, ResourceServer, Role, User } from '../generated/sqlite/client.ts';
export type { Dialect } from './schema.ts';

/** Called after every query, with its duration in seconds and the error it failed with, if it did. */
export type QueryObserver = (model: string, operation: string, seconds: number, error?: unknown) => void;

/** Times every model query through a Prisma client extension. */
function observed(prisma: PrismaClient, observe?: QueryObserver): PrismaClient {
  if (!observe) return prisma;
  return prisma.$extends({
    query: {
      async $allOperations({ model, operation, args, query }) {
        const start = performance.now();
        const seconds = () => (performance.now() - start) / 1000;
        try {
          const result = await query(args);
          observe(model ?? 'raw', operation, seconds());
          return result;
        } catch (err) {
          observe(model ?? 'raw', operation, seconds(), err);
          throw err;
        }
      },
    },
  }) as unknown as PrismaClient;
}

/**
 * Says when the database (or Redis) goes out of reach and when it is back, once each (warn,
 * then info), however many queries fail in between. Fed by every query's outcome (a
 * QueryObserver; src/lib/redis.ts for Redis).
 */
export function availabilityLog(log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void }, what = 'database'): (error?: unknown) => void {
  let down: Date | null = null;
  return (error) => {
    if (error !== undefined && isDatabaseUnavailable(error) && !down) {
      down = new Date();
      log.warn({ err: error }, `${what} unavailable: requests that need it answer 503 until it is back`);
    } else if (error === undefined && down) {
      log.info({ unavailableSeconds: Math.round((Date.now() - down.getTime()) / 1000) }, `${what} available again`);
      down = null;
    }
  };
}

const ping = async (prisma: PrismaClient) => {
  await prisma.$queryRaw`SELECT 1`;
};

export interface Database {
  readonly prisma: PrismaClient;
  readonly dialect: Dialect;
  /** Answers when the database does (readiness). */
  ping(): Promise<void>;
  /** A fresh driver adapter factory on the same database, for the schema engine. */
  adapterFactory(): SqlMigrationAwareDriverAdapterFactory;
  close(): Promise<void>;
}

class DatabaseUrlError extends StartupError {
  override name = 'DatabaseUrlError';

  constructor(message: string) {
    super('invalid_database_url', message);
  }
}

/** `file:./data/idp.db` → an absolute file URL, creating the folder on first start. */
function sqliteUrl(url: string): string {
  const path = url.slice('file:'.length);
  if (!path || path === ':memory:') throw new DatabaseUrlError('DATABASE_URL: an in-memory SQLite database cannot be shared; give a file path');
  const absolute = resolve(path);
  try {
    mkdirSync(dirname(absolute), { recursive: true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOTDIR' || code === 'EEXIST' ? 'a file is in the way' : String(code ?? err);
    throw new DatabaseUrlError(`DATABASE_URL: cannot create the folder ${dirname(absolute)} for the SQLite file (${why})`);
  }
  return `file:${absolute}`;
}

/** What a database refusing us at start means, in one line that names the setting (never the password). */
function openFailure(err: unknown, where: string): DatabaseUrlError {
  const cause = (err as { meta?: { driverAdapterError?: { cause?: { kind?: string; db?: string; originalMessage?: string } } } }).meta?.driverAdapterError?.cause;
  const message = String((err as { message?: unknown }).message ?? err);
  if (cause?.kind === 'DatabaseNotReachable' || isDatabaseUnavailable(err)) return new DatabaseUrlError(`DATABASE_URL: cannot reach the database at ${where} (is it running, and is the address right?)`);
  if (cause?.kind === 'DatabaseAccessDenied' || cause?.kind === 'AuthenticationFailed') return new DatabaseUrlError(`DATABASE_URL: the database at ${where} refused the user name or password (${cause.originalMessage ?? 'access denied'})`);
  if (cause?.kind === 'DatabaseDoesNotExist') return new DatabaseUrlError(`DATABASE_URL: the database "${cause.db ?? '?'}" does not exist at ${where}; create it first`);
  if (/not a database|malformed|file is encrypted/i.test(message)) return new DatabaseUrlError(`DATABASE_URL: ${where} is not a SQLite database, or it is damaged (restore it from a backup, or point DATABASE_URL elsewhere)`);
  if (/unable to open database file/i.test(message)) return new DatabaseUrlError(`DATABASE_URL: ${where} cannot be opened (is it a folder, or not readable?)`);
  return new DatabaseUrlError(`DATABASE_URL: the database at ${where} cannot be used: ${message.split('\n').filter(Boolean).pop()?.slice(0, 200) ?? 'unknown error'}`);
}

// Each database's client and driver are loaded only when that database is used: a process
// holds one of them in memory, not both.
async function openSqlite(databaseUrl: string, observe?: QueryObserver): Promise<Database> {
  const url = sqliteUrl(databaseUrl);
  const [{ PrismaNodeSqlite }, { PrismaClient }] = await Promise.all([import('./sqlite-adapter.ts'), import('../generated/sqlite/client.ts')]);
  const factory = () => new PrismaNodeSqlite({ url });
  const prisma = new PrismaClient({ adapter: factory() });
  // WAL lets readers proceed while one writer commits; the busy timeout makes a writer
  // wait for the lock instead of failing when another process holds it.
  await prisma.$queryRaw`PRAGMA journal_mode = WAL`.catch(async (err: unknown) => {
    await prisma.$disconnect();
    throw openFailure(err, url.slice('file:'.length));
  });
  await prisma.$queryRaw`PRAGMA busy_timeout = 5000`;
  await prisma.$queryRaw`PRAGMA synchronous = NORMAL`;
  await prisma.$queryRaw`PRAGMA foreign_keys = ON`;
  // Pages are read through a memory map rather than copied by read() calls: lookups in a large
  // database stay cheap (the mapping is the OS page cache, shared and reclaimable, not heap).
  await prisma.$queryRaw`PRAGMA mmap_size = 268435456`;
  const client = observed(prisma, observe);
  return { prisma: client, dialect: 'sqlite', ping: () => ping(client), adapterFactory: factory, close: () => prisma.$disconnect() };
}

async function openPostgres(databaseUrl: string, observe?: QueryObserver): Promise<Database> {
  // A reserved character left as it is in the user name or password cuts the address short.
  const afterScheme = databaseUrl.slice(databaseUrl.indexOf('//') + 2);
  if (!(afterScheme.split(/[/?#]/)[0] ?? '').includes('@') && afterScheme.includes('@')) {
    throw new DatabaseUrlError('DATABASE_URL: the user name or password holds a reserved character: percent-encode it (/ → %2F, ? → %3F, # → %23, @ → %40)');
  }
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new DatabaseUrlError('DATABASE_URL: not a valid postgresql:// URL');
  }
  // `?schema=name` selects a PostgreSQL schema, as in Prisma's own URLs.
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  const [{ PrismaPg }, { PrismaClient: PostgresPrismaClient }] = await Promise.all([import('@prisma/adapter-pg'), import('../generated/postgresql/client.ts')]);
  const factory = () => new PrismaPg({ connectionString: url.href, connectionTimeoutMillis: 2_000 }, schema ? { schema } : {});
  const prisma = new PostgresPrismaClient({ adapter: factory() }) as unknown as PrismaClient;
  await ping(prisma).catch(async (err: unknown) => {
    await prisma.$disconnect();
    throw openFailure(err, `${url.hostname}:${url.port || 5432}${url.pathname}`);
  });
  const client = observed(prisma, observe);
  return { prisma: client, dialect: 'postgresql', ping: () => ping(client), adapterFactory: factory, close: () => prisma.$disconnect() };
}

export async function openDatabase(databaseUrl: string, observe?: QueryObserver): Promise<Database> {
  if (databaseUrl.startsWith('file:')) return openSqlite(databaseUrl, observe);
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return openPostgres(databaseUrl, observe);
  throw new DatabaseUrlError(
    `DATABASE_URL: unsupported database URL scheme "${databaseUrl.split(':')[0]}:" (use file:./path/to.db for SQLite or postgresql://… for PostgreSQL)`,
  );
}

/** A case-insensitive "contains" filter: SQLite's LIKE already is; PostgreSQL needs ILIKE. */
export function containsText(dialect: Dialect, text: string): { contains: string } {
  return (dialect === 'postgresql' ? { contains: text, mode: 'insensitive' } : { contains: text }) as { contains: string };
}

/**
 * Prisma's `contains` passes LIKE wildcards (% and _) through. Text with them is searched by its
 * longest wildcard-free piece in the database and matched exactly in memory, over at most this many rows.
 */
export const LITERAL_SEARCH_SCAN_LIMIT = 5000;

export function likeSafePiece(text: string): { piece: string; exact: boolean } {
  if (!/[%_\\]/.test(text)) return { piece: text, exact: true };
  const piece = text.split(/[%_\\]/).sort((a, b) => b.length - a.length)[0] ?? '';
  return { piece, exact: false };
}

/**
 * A timestamp parameter of a raw query where the database cannot tell its type from a column
 * (a CASE branch): PostgreSQL would take it for text, so it is cast there.
 */
export function timestampParam(dialect: Dialect, value: Date | null): Sql {
  return dialect === 'postgresql' ? sqltag`CAST(${value} AS TIMESTAMP(3))` : sqltag`${value}`;
}
