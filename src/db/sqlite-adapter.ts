/**
 * Prisma's driver adapter for SQLite on Node's built-in `node:sqlite`.
 *
 * Why not the libSQL adapter: its driver prepares every statement again and builds each result
 * through a slow native column/row interface (in profiles, `prepare` and `columns` were a third of
 * a query's CPU); here statements are prepared once per connection and reused (`npm run
 * bench:queries` shows what a statement costs). `node:sqlite` ships with the runtime, so there is
 * nothing to compile or download. Values are stored exactly as the libSQL
 * adapter stores them (DateTime as ISO-8601 text with `+00:00`), so databases written by either
 * read the same.
 *
 * One connection per process, used synchronously. A transaction owns the connection until it
 * ends: queries from other requests wait for it instead of running inside it.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  ColumnTypeEnum,
  DriverAdapterError,
  type ArgType,
  type ColumnType,
  type IsolationLevel,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
  type SqlQuery,
  type SqlResultSet,
  type Transaction,
} from '@prisma/driver-adapter-utils';

const ADAPTER_NAME = 'idp-node-sqlite';

const EXCLUSIVE_LOCKING = /^\s*PRAGMA\s+(main\.)?locking_mode\s*=\s*EXCLUSIVE\s*;?\s*$/i;

/** Prepared statements kept per connection; Prisma's queries come from a small set of shapes. */
const STATEMENT_CACHE_SIZE = 500;

/** Declared column type → Prisma's column type (null: infer from the values). */
function declaredType(decl: string | null): ColumnType | null {
  switch ((decl ?? '').toUpperCase()) {
    case 'TEXT':
    case 'CLOB':
    case 'CHARACTER':
    case 'VARCHAR':
    case 'VARYING CHARACTER':
    case 'NCHAR':
    case 'NATIVE CHARACTER':
    case 'NVARCHAR':
      return ColumnTypeEnum.Text;
    case 'DATETIME':
    case 'TIMESTAMP':
      return ColumnTypeEnum.DateTime;
    case 'DATE':
      return ColumnTypeEnum.Date;
    case 'TIME':
      return ColumnTypeEnum.Time;
    case 'TINYINT':
    case 'SMALLINT':
    case 'MEDIUMINT':
    case 'INT':
    case 'INTEGER':
    case 'SERIAL':
    case 'INT2':
      return ColumnTypeEnum.Int32;
    case 'BIGINT':
    case 'UNSIGNED BIG INT':
    case 'INT8':
      return ColumnTypeEnum.Int64;
    case 'BOOLEAN':
      return ColumnTypeEnum.Boolean;
    case 'FLOAT':
      return ColumnTypeEnum.Float;
    case 'DOUBLE':
    case 'DOUBLE PRECISION':
    case 'NUMERIC':
    case 'REAL':
      return ColumnTypeEnum.Double;
    case 'DECIMAL':
      return ColumnTypeEnum.Numeric;
    case 'BLOB':
      return ColumnTypeEnum.Bytes;
    case 'JSONB':
      return ColumnTypeEnum.Json;
    default:
      return null;
  }
}

function inferredType(value: unknown): ColumnType {
  if (typeof value === 'string') return ColumnTypeEnum.Text;
  if (typeof value === 'number') return ColumnTypeEnum.UnknownNumber;
  if (typeof value === 'bigint') return ColumnTypeEnum.Int64;
  if (value instanceof Uint8Array) return ColumnTypeEnum.Bytes;
  return ColumnTypeEnum.Int32;
}

/** Prisma's arguments → values node:sqlite binds. */
const bind = (args: unknown[], types: ArgType[]) => args.map((a, i) => toArg(a, types[i])) as never[];

function toArg(value: unknown, type: ArgType | undefined): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    switch (type?.scalarType) {
      case 'datetime':
        return isoText(new Date(value));
      case 'bigint':
        return BigInt(value);
      case 'decimal':
        return Number.parseFloat(value);
      case 'bytes':
        return Buffer.from(value, 'base64');
      default:
        return value;
    }
  }
  if (value instanceof Date) return isoText(value);
  return value;
}

const isoText = (date: Date) => date.toISOString().replace('Z', '+00:00');

function fromValue(value: unknown, type: ColumnType): unknown {
  if (typeof value === 'number') {
    if (type === ColumnTypeEnum.DateTime) return new Date(value).toISOString();
    if ((type === ColumnTypeEnum.Int32 || type === ColumnTypeEnum.Int64) && !Number.isInteger(value)) return Math.trunc(value);
    return value;
  }
  if (typeof value === 'bigint') return type === ColumnTypeEnum.DateTime ? new Date(Number(value)).toISOString() : value.toString();
  return value;
}

interface SqliteError extends Error {
  code?: string;
  errcode?: number;
}

/** SQLite's extended result codes → the errors Prisma turns into P2002, P2011, P2003, … */
function driverError(err: unknown): never {
  const error = err as SqliteError;
  if (error?.code !== 'ERR_SQLITE_ERROR' || typeof error.errcode !== 'number') throw err;
  const code = error.errcode;
  const message = error.message;
  // "UNIQUE constraint failed: User.email, User.name" → the column names.
  const fields = message.split('constraint failed: ')[1]?.split(', ').map((f) => f.split('.').pop() ?? f);
  const constraint = fields ? { fields } : undefined;
  const base = { originalCode: String(code), originalMessage: message };
  switch (code) {
    case 1555: // SQLITE_CONSTRAINT_PRIMARYKEY
    case 2067: // SQLITE_CONSTRAINT_UNIQUE
      throw new DriverAdapterError({ ...base, kind: 'UniqueConstraintViolation', constraint });
    case 1299: // SQLITE_CONSTRAINT_NOTNULL
      throw new DriverAdapterError({ ...base, kind: 'NullConstraintViolation', constraint });
    case 787: // SQLITE_CONSTRAINT_FOREIGNKEY
    case 1811: // SQLITE_CONSTRAINT_TRIGGER
      throw new DriverAdapterError({ ...base, kind: 'ForeignKeyConstraintViolation', constraint: { foreignKey: {} } });
  }
  if ((code & 0xff) === 5) throw new DriverAdapterError({ ...base, kind: 'SocketTimeout' }); // SQLITE_BUSY
  if (message.startsWith('no such table')) throw new DriverAdapterError({ ...base, kind: 'TableDoesNotExist', table: message.split(': ')[1] });
  if (message.startsWith('no such column')) throw new DriverAdapterError({ ...base, kind: 'ColumnNotFound', column: message.split(': ')[1] });
  throw new DriverAdapterError({ ...base, kind: 'sqlite', extendedCode: code, message });
}

interface Prepared {
  statement: StatementSync;
  names: string[];
  /** Declared types; null where the column is an expression. */
  types: (ColumnType | null)[];
}

/** One SQLite connection: statement cache, and who owns it (a transaction, or everyone). */
class Connection {
  readonly db: DatabaseSync;
  readonly #statements = new Map<string, Prepared>();
  /** Settles when the transaction holding the connection ends. */
  owner: Promise<void> | undefined;

  constructor(path: string) {
    // A writer waits up to 5 s for another process's lock instead of failing at once.
    this.db = new DatabaseSync(path, { timeout: 5000 });
  }

  #prepare(sql: string): Prepared {
    let prepared = this.#statements.get(sql);
    if (!prepared) {
      const statement = this.db.prepare(sql);
      statement.setReturnArrays(true);
      const columns = statement.columns();
      prepared = { statement, names: columns.map((c) => c.name), types: columns.map((c) => declaredType(c.type)) };
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) this.#statements.delete(this.#statements.keys().next().value as string);
      this.#statements.set(sql, prepared);
    }
    return prepared;
  }

  query({ sql, args, argTypes }: SqlQuery): SqlResultSet {
    try {
      const { statement, names, types } = this.#prepare(sql);
      const rows = statement.all(...bind(args, argTypes)) as unknown as unknown[][];
      const columnTypes = types.map((type, i) => type ?? inferredType(rows.find((row) => row[i] !== null)?.[i]));
      for (const row of rows) for (let i = 0; i < row.length; i++) row[i] = fromValue(row[i], columnTypes[i]!);
      return { columnNames: names, columnTypes, rows };
    } catch (err) {
      driverError(err);
    }
  }

  execute({ sql, args, argTypes }: SqlQuery): number {
    try {
      const { statement } = this.#prepare(sql);
      return Number(statement.run(...bind(args, argTypes)).changes);
    } catch (err) {
      driverError(err);
    }
  }

  script(sql: string): void {
    try {
      this.db.exec(sql);
    } catch (err) {
      driverError(err);
    }
  }

  /**
   * Runs `work` once no transaction holds the connection, in the same turn as that check (so that
   * nothing can claim the connection in between).
   */
  async whenFree<T>(work: () => T): Promise<T> {
    while (this.owner) await this.owner;
    return work();
  }

  close(): void {
    this.#statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}

class SqliteTransaction implements Transaction {
  readonly provider = 'sqlite';
  readonly adapterName = ADAPTER_NAME;
  // BEGIN is sent by startTransaction, not by Prisma.
  readonly options = { usePhantomQuery: true };
  readonly #connection: Connection;
  readonly #end: () => void;

  constructor(connection: Connection, end: () => void) {
    this.#connection = connection;
    this.#end = end;
  }

  async queryRaw(query: SqlQuery): Promise<SqlResultSet> {
    return this.#connection.query(query);
  }

  async executeRaw(query: SqlQuery): Promise<number> {
    return this.#connection.execute(query);
  }

  async commit(): Promise<void> {
    try {
      this.#connection.script('COMMIT');
    } finally {
      this.#end();
    }
  }

  async rollback(): Promise<void> {
    try {
      if (this.#connection.db.isTransaction) this.#connection.script('ROLLBACK');
    } finally {
      this.#end();
    }
  }

  async createSavepoint(name: string): Promise<void> {
    this.#connection.script(`SAVEPOINT ${name}`);
  }

  async rollbackToSavepoint(name: string): Promise<void> {
    this.#connection.script(`ROLLBACK TO ${name}`);
  }

  async releaseSavepoint(name: string): Promise<void> {
    this.#connection.script(`RELEASE SAVEPOINT ${name}`);
  }
}

class SqliteAdapter implements SqlDriverAdapter {
  readonly provider = 'sqlite';
  readonly adapterName = ADAPTER_NAME;
  readonly #connection: Connection;

  constructor(connection: Connection) {
    this.#connection = connection;
  }

  queryRaw(query: SqlQuery): Promise<SqlResultSet> {
    return this.#connection.whenFree(() => this.#connection.query(query));
  }

  async executeRaw(query: SqlQuery): Promise<number> {
    // Prisma's schema engine asks for exclusive locking before migrating. On a WAL database that
    // needs every other connection closed, this process's own client included, so it fails at
    // once with "database is locked"; migrations are serialised by the engine's own bookkeeping.
    if (EXCLUSIVE_LOCKING.test(query.sql)) return 0;
    return this.#connection.whenFree(() => this.#connection.execute(query));
  }

  executeScript(script: string): Promise<void> {
    return this.#connection.whenFree(() => this.#connection.script(script));
  }

  async startTransaction(isolationLevel?: IsolationLevel): Promise<Transaction> {
    if (isolationLevel && isolationLevel !== 'SERIALIZABLE') {
      throw new DriverAdapterError({ kind: 'InvalidIsolationLevel', level: isolationLevel });
    }
    const connection = this.#connection;
    return connection.whenFree(() => {
      let end!: () => void;
      connection.owner = new Promise<void>((resolve) => {
        end = () => {
          connection.owner = undefined;
          resolve();
        };
      });
      try {
        // IMMEDIATE takes the write lock up front: a transaction never fails half-way because
        // another process wrote first, it waits for the busy timeout instead.
        connection.script('BEGIN IMMEDIATE');
      } catch (err) {
        end();
        throw err;
      }
      return new SqliteTransaction(connection, end);
    });
  }

  async dispose(): Promise<void> {
    this.#connection.close();
  }
}

/** `file:/absolute/path.db` (or `:memory:`) → a Prisma driver adapter factory. */
export class PrismaNodeSqlite implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'sqlite';
  readonly adapterName = ADAPTER_NAME;
  readonly #path: string;

  constructor({ url }: { url: string }) {
    this.#path = url.startsWith('file:') ? url.slice('file:'.length) : url;
  }

  async connect(): Promise<SqlDriverAdapter> {
    return new SqliteAdapter(new Connection(this.#path));
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    return new SqliteAdapter(new Connection(':memory:'));
  }
}
