import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { MigrationList, SchemaEngine, SchemaEngine as SchemaEngineClass } from '@prisma/schema-engine-wasm';
import { bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter, type SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { StartupError } from '../lib/errors.ts';
import type { Database } from './index.ts';
import { migrationsDir, schemaFor, type Dialect } from './schema.ts';

export { migrationsDir, schemaFor } from './schema.ts';

class MigrationError extends StartupError {
  override name = 'MigrationError';

  constructor(message: string) {
    super('migration_failed', message);
  }
}

/**
 * Prisma's schema engine compiled to WebAssembly. It is a wasm-bindgen "bundler" build,
 * which Node cannot import directly, so the module is instantiated by hand.
 */
async function loadSchemaEngine(): Promise<typeof SchemaEngineClass> {
  const bg = (await import('@prisma/schema-engine-wasm/schema_engine_bg')) as unknown as WasmBindgenModule;
  const wasmPath = fileURLToPath(import.meta.resolve('@prisma/schema-engine-wasm/schema_engine_bg').replace(/\.js$/, '.wasm'));
  const { instance } = await wasm.instantiate(await readFile(wasmPath), { './schema_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  return bg.SchemaEngine;
}

interface WasmBindgenModule {
  __wbg_set_wasm(exports: unknown): void;
  SchemaEngine: typeof SchemaEngineClass;
}

// The WebAssembly global, typed just enough for this file (its types live in the DOM lib).
const wasm = (globalThis as unknown as {
  WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: { __wbindgen_start(): void } } }> };
}).WebAssembly;

let engineClass: Promise<typeof SchemaEngineClass> | undefined;

/**
 * When it describes a SQLite database (the drift check, `npm run migration:create`), the engine
 * reads each partial index's definition with the index name as a double-quoted string
 * (`name = "…"`), which `node:sqlite` (built without double-quoted string literals) takes for a
 * column and refuses, failing the whole description: that one query gets the name in single quotes.
 */
function quotingIndexNames(factory: SqlMigrationAwareDriverAdapterFactory): SqlMigrationAwareDriverAdapterFactory {
  const fixed = (adapter: SqlDriverAdapter): SqlDriverAdapter =>
    new Proxy(adapter, {
      get(target, prop) {
        if (prop === 'queryRaw') {
          return (query: Parameters<SqlDriverAdapter['queryRaw']>[0]) =>
            target.queryRaw({ ...query, sql: query.sql.replace(/(\bFROM sqlite_master WHERE type = 'index' AND name = )"((?:[^"]|"")*)"/, (_, head: string, name: string) => `${head}'${name.replaceAll('""', '"').replaceAll("'", "''")}'`) });
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => fixed(await factory.connect()),
    connectToShadowDb: async () => fixed(await factory.connectToShadowDb()),
  };
}

async function withSchemaEngine<T>(db: Database, fn: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  engineClass ??= loadSchemaEngine();
  const Engine = await engineClass;
  const schema = await schemaFor(db.dialect);
  const factory = db.dialect === 'sqlite' ? quotingIndexNames(db.adapterFactory()) : db.adapterFactory();
  const engine = await Engine.new(
    { datamodels: [['schema.prisma', schema]] },
    () => {},
    bindMigrationAwareSqlAdapterFactory(factory),
  );
  try {
    return await fn(engine);
  } finally {
    engine.free();
  }
}

async function readMigrations(dialect: Dialect): Promise<MigrationList> {
  const baseDir = migrationsDir(dialect);
  const entries = await readdir(baseDir, { withFileTypes: true });
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const lock = await readFile(`${baseDir}/migration_lock.toml`, 'utf8').catch(() => null);
  return {
    baseDir,
    lockfile: { path: 'migration_lock.toml', content: lock },
    shadowDbInitScript: '',
    migrationDirectories: await Promise.all(
      dirs.map(async (path) => ({
        path,
        migrationFile: { path: 'migration.sql', content: { tag: 'ok' as const, value: await readFile(`${baseDir}/${path}/migration.sql`, 'utf8') } },
      })),
    ),
  };
}

/** Committed migrations not yet applied to the database (all of them on an empty database). */
export async function pendingMigrations(db: Database): Promise<string[]> {
  const { migrationDirectories } = await readMigrations(db.dialect);
  const applied = (await appliedMigrations(db)) ?? new Set();
  return migrationDirectories.map((d) => d.path).filter((name) => !applied.has(name));
}

/** Names of the migrations recorded as applied, or null when the database has no history yet. */
async function appliedMigrations(db: Database): Promise<Set<string> | null> {
  try {
    const rows = await db.prisma.$queryRaw<{ migration_name: string }[]>`SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
    return new Set(rows.map((r) => r.migration_name));
  } catch {
    return null;
  }
}

/** Applies every migration not yet recorded in `_prisma_migrations`, as `prisma migrate deploy` does. */
export async function migrate(db: Database): Promise<string[]> {
  const migrationsList = await readMigrations(db.dialect);
  // Up to date (the usual case at start): skip loading the schema engine altogether.
  const applied = await appliedMigrations(db);
  if (applied && migrationsList.migrationDirectories.every((d) => applied.has(d.path))) return [];
  try {
    const { appliedMigrationNames } = await withSchemaEngine(db, (engine) =>
      engine.applyMigrations({ migrationsList, filters: { externalTables: [], externalEnums: [] } }),
    );
    return appliedMigrationNames;
  } catch (err) {
    const detail = String((err as Error).message ?? err).split('\n').filter((l) => l.trim() && !/^\s+(at |\d+: )/.test(l)).slice(0, 3).join(' ');
    throw new MigrationError(`the database schema cannot be brought up to date: ${detail}`);
  }
}

/** The SQL that creates the whole schema on an empty database of this provider. */
export async function fullSchemaSql(db: Database, schema?: string): Promise<string> {
  return diffDatamodels(db, null, schema ?? (await schemaFor(db.dialect)));
}

type DiffTarget = Parameters<SchemaEngine['diff']>[0]['from'];

/** The SQL the schema engine writes to go from one schema state to another ('' when none). */
async function diffSql(db: Database, from: DiffTarget, to: DiffTarget): Promise<string> {
  const { stdout } = await withSchemaEngine(db, (engine) =>
    engine.diff({ from, to, script: true, exitCode: null, filters: { externalTables: [], externalEnums: [] } }),
  );
  const sql = stdout?.trim() ?? '';
  return sql === '-- This is an empty migration.' ? '' : sql;
}

const datamodel = (content: string): DiffTarget => ({ tag: 'schemaDatamodel', files: [{ path: 'schema.prisma', content }] });

/** The SQL that turns one datamodel into another (`from` null: an empty database). */
export async function diffDatamodels(db: Database, from: string | null, to: string): Promise<string> {
  return diffSql(db, from === null ? { tag: 'empty' } : datamodel(from), datamodel(to));
}

/**
 * SQLite only (PostgreSQL introspection is not available through the WebAssembly engine's
 * driver adapter): the SQL that would bring a database with every committed migration applied
 * in line with the schema; empty when they agree.
 */
export async function sqliteSchemaDrift(db: Database): Promise<string> {
  const existing = await readMigrations(db.dialect);
  if (!existing.migrationDirectories.length) return fullSchemaSql(db);
  await migrate(db);
  const schema = await schemaFor(db.dialect);
  // The live database (after the migrations) against the schema.
  return diffSql(db, { tag: 'schemaDatasource', files: [{ path: 'schema.prisma', content: schema }], configDir: '.' }, datamodel(schema));
}
