import type { RedisConnection } from '../lib/redis.ts';

/**
 * The short-lived half of the artifact store in Redis (EPHEMERAL_STORE=redis), used only by
 * src/artifacts/store.ts. Each artifact is a hash under `<prefix>a:<model>:<id>` that expires
 * with it: p (payload), e (expiry, ms), c (consumed at, ms), and the columns it is looked up and
 * revoked by: g (grant), s (session uid), a (account), l (client), u (session uid, sessions
 * only), d (user code, device codes only). Secondary keys, expiring with what they point to:
 * `uid:<uid>` and `userCode:<code>` hold the member (`<model>:<id>`) they find; `grant:<id>`,
 * `account:<id>` and `client:<id>` are sets of members, for revoking everything of one.
 * Scripts make each read of an artifact with its session, each consume and each removal one
 * atomic step. Keys are computed inside the scripts, so this needs one Redis, not a cluster.
 */

/** The columns an artifact is stored with (as in the database's OidcPayload). */
export interface ArtifactColumns {
  grantId: string | null;
  sessionUid: string | null;
  uid: string | null;
  userCode: string | null;
  accountId: string | null;
  clientId: string | null;
}

export interface RedisArtifact {
  model: string;
  id: string;
  payload: string;
  expiresAt: Date | null;
  consumedAt: Date | null;
  grantId: string | null;
  sessionUid: string | null;
  /** With `withSession`: the session the artifact's sessionUid names, if it still exists. */
  sessionPayload: string | null;
  sessionExpiresAt: Date | null;
}

type IndexKind = 'grant' | 'account' | 'client';

/** Reads `<model>:<id>` for each model after the first three arguments (prefix, id, with session?). */
const FIND = `
local P, id, withSession = ARGV[1], ARGV[2], ARGV[3] == '1'
local function v(x) if x then return x end return '' end
local out = {}
for i = 4, #ARGV do
  local f = redis.call('HMGET', P .. ARGV[i] .. ':' .. id, 'p', 'e', 'c', 'g', 's')
  if f[1] then
    local sp, se = '', ''
    if withSession and f[5] and f[5] ~= '' then
      local member = redis.call('GET', P .. 'uid:' .. f[5])
      if member then
        local s = redis.call('HMGET', P .. member, 'p', 'e')
        sp, se = v(s[1]), v(s[2])
      end
    end
    table.insert(out, ARGV[i]) table.insert(out, f[1]) table.insert(out, v(f[2])) table.insert(out, v(f[3]))
    table.insert(out, v(f[4])) table.insert(out, v(f[5])) table.insert(out, sp) table.insert(out, se)
  end
end
return out`;

/** The member a unique key (`uid:…`, `userCode:…`) names, and its p, e, c. */
const FIND_BY = `
local member = redis.call('GET', ARGV[1] .. ARGV[2])
if not member then return false end
local function v(x) if x then return x end return '' end
local f = redis.call('HMGET', ARGV[1] .. member, 'p', 'e', 'c')
if not f[1] then return false end
return {member, f[1], v(f[2]), v(f[3])}`;

/** Of parallel calls, exactly one marks an existing artifact consumed. */
const CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'c', ARGV[1])`;

/** Deletes members (`<model>:<id>`) and what points to them; returns how many existed. */
const DESTROY = `
local P, n = ARGV[1], 0
for i = 2, #ARGV do
  local member = ARGV[i]
  local key = P .. member
  local f = redis.call('HMGET', key, 'u', 'd', 'g', 'a', 'l')
  n = n + redis.call('DEL', key)
  for j, index in ipairs({'uid:', 'userCode:'}) do
    if f[j] and f[j] ~= '' and redis.call('GET', P .. index .. f[j]) == member then redis.call('DEL', P .. index .. f[j]) end
  end
  for j, index in ipairs({'grant:', 'account:', 'client:'}) do
    if f[j + 2] and f[j + 2] ~= '' then redis.call('SREM', P .. index .. f[j + 2], member) end
  end
end
return n`;

const date = (ms: string | undefined) => (ms ? new Date(Number(ms)) : null);
const text = (value: string | undefined) => value || null;
const memberOf = (model: string, id: string) => `${model}:${id}`;
const split = (member: string) => {
  const at = member.indexOf(':');
  return { model: member.slice(0, at), id: member.slice(at + 1) };
};

export function createRedisArtifacts(redis: RedisConnection) {
  const P = `${redis.prefix}a:`;

  async function destroyMembers(members: string[]): Promise<number> {
    if (!members.length) return 0;
    return Number(await redis.run((r) => r.eval(DESTROY, 0, P, ...members)));
  }

  async function find(id: string, models: readonly string[], withSession: boolean): Promise<RedisArtifact[]> {
    const flat = (await redis.run((r) => r.eval(FIND, 0, P, id, withSession ? '1' : '0', ...models))) as string[];
    const rows: RedisArtifact[] = [];
    for (let i = 0; i < flat.length; i += 8) {
      const [model, payload, e, c, g, s, sp, se] = flat.slice(i, i + 8) as [string, string, string, string, string, string, string, string];
      rows.push({ model, id, payload, expiresAt: date(e), consumedAt: date(c), grantId: text(g), sessionUid: text(s), sessionPayload: text(sp), sessionExpiresAt: date(se) });
    }
    return rows;
  }

  return {
    /** One round trip: the hash, its expiry and its secondary keys. */
    async save(model: string, id: string, payload: string, columns: ArtifactColumns, expiresInSeconds?: number): Promise<void> {
      const member = memberOf(model, id);
      const key = P + member;
      const ttl = expiresInSeconds && expiresInSeconds > 0 ? Math.ceil(expiresInSeconds) : undefined;
      const expiresAt = ttl ? String(Date.now() + expiresInSeconds! * 1000) : '';
      await redis.run((r) => {
        const m = r.multi();
        m.hset(key, { p: payload, e: expiresAt, g: columns.grantId ?? '', s: columns.sessionUid ?? '', a: columns.accountId ?? '', l: columns.clientId ?? '', u: columns.uid ?? '', d: columns.userCode ?? '' });
        if (ttl) m.expire(key, ttl);
        else m.persist(key);
        for (const [index, value] of [['uid:', columns.uid], ['userCode:', columns.userCode]] as const) {
          if (!value) continue;
          if (ttl) m.set(P + index + value, member, 'EX', ttl);
          else m.set(P + index + value, member);
        }
        for (const [index, value] of [['grant:', columns.grantId], ['account:', columns.accountId], ['client:', columns.clientId]] as const) {
          if (!value) continue;
          m.sadd(P + index + value, member);
          // The set lives as long as its longest-lived member.
          if (ttl) m.expire(P + index + value, ttl, 'NX').expire(P + index + value, ttl, 'GT');
          else m.persist(P + index + value);
        }
        return m.exec();
      });
    },

    async find(model: string, id: string): Promise<RedisArtifact | null> {
      return (await find(id, [model], false))[0] ?? null;
    },

    /** The artifact stored under `id` as any of `models`, each with the session its sessionUid names. */
    findWithSession(id: string, models: readonly string[]): Promise<RedisArtifact[]> {
      return find(id, models, true);
    },

    /** By a unique column: a session by its uid, a device code by its user code. */
    async findBy(index: 'uid' | 'userCode', value: string): Promise<(RedisArtifact & { model: string }) | null> {
      const found = (await redis.run((r) => r.eval(FIND_BY, 0, P, `${index}:${value}`))) as [string, string, string, string] | null;
      if (!found) return null;
      const [member, payload, e, c] = found;
      return { ...split(member), payload, expiresAt: date(e), consumedAt: date(c), grantId: null, sessionUid: null, sessionPayload: null, sessionExpiresAt: null };
    },

    async findMany(model: string, ids: readonly string[]): Promise<RedisArtifact[]> {
      if (!ids.length) return [];
      const rows = await Promise.all(ids.map((id) => find(id, [model], false)));
      return rows.flat();
    },

    async consume(model: string, id: string): Promise<boolean> {
      return Number(await redis.run((r) => r.eval(CONSUME, 1, P + memberOf(model, id), String(Date.now())))) === 1;
    },

    /** Deletes artifacts; returns how many existed. */
    destroy(model: string, ids: readonly string[]): Promise<number> {
      return destroyMembers(ids.map((id) => memberOf(model, id)));
    },

    /** The artifacts of one grant, account or client, as (model, id). */
    async indexed(index: IndexKind, value: string): Promise<{ model: string; id: string }[]> {
      return (await redis.run((r) => r.smembers(`${P}${index}:${value}`))).map(split);
    },

    /** Deletes the artifacts of one grant, account or client whose model `which` accepts. */
    async destroyIndexed(index: IndexKind, value: string, which: (model: string) => boolean): Promise<number> {
      const members = await redis.run((r) => r.smembers(`${P}${index}:${value}`));
      return destroyMembers(members.filter((m) => which(split(m).model)));
    },
  };
}

export type RedisArtifacts = ReturnType<typeof createRedisArtifacts>;
