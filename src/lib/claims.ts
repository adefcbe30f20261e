import { z } from 'zod';

/**
 * Custom claims: a person's own attributes (User.attributes), and the mappings that put them, or
 * other facts about the person, into tokens under names an admin chooses: an API's access tokens
 * (ResourceServer.claimMappings), a client's ID tokens and userinfo (client metadata
 * `claim_mappings`). One set of rules for the admin API, the CLI and the provider.
 */

/** The most a person's attributes may weigh, serialized as JSON (UTF-8 bytes). */
const ATTRIBUTES_MAX_BYTES = 4096;
/** How deep attributes may nest: the object itself is level 1, a value inside it level 2, … */
const ATTRIBUTES_MAX_DEPTH = 5;
/** The most claims one API or one client may map. */
const CLAIM_MAPPINGS_MAX = 20;
const CLAIM_NAME_MAX = 100;

/** Whether a JSON value nests deeper than `max` levels (iterative: a hostile input cannot overflow the stack). */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, level] = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    if (level > max) return true;
    for (const child of Object.values(v)) stack.push([child, level + 1]);
  }
  return false;
}

/** A person's custom attributes: a JSON object of at most 4096 bytes, nested at most 5 levels. */
export const attributesSchema = z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).superRefine((value, ctx) => {
  if (nestsDeeperThan(value, ATTRIBUTES_MAX_DEPTH)) {
    ctx.addIssue({ code: 'custom', message: `must nest at most ${ATTRIBUTES_MAX_DEPTH} levels deep (the object itself is the first)` });
    return;
  }
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (bytes > ATTRIBUTES_MAX_BYTES) ctx.addIssue({ code: 'custom', message: `must be at most ${ATTRIBUTES_MAX_BYTES} bytes as JSON (this is ${bytes})` });
});

export type Attributes = Record<string, unknown>;

/** Stored attributes (JSON text) as an object; anything else reads as none. */
export function parseAttributes(stored: string | null | undefined): Attributes {
  if (!stored) return {};
  try {
    const value: unknown = JSON.parse(stored);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Attributes) : {};
  } catch {
    return {};
  }
}

/**
 * Claims nobody maps: those the provider sets itself in a JWT, an ID token or a logout token
 * (RFC 7519 §4.1, RFC 9068 §2.2, OpenID Connect Core §2 and §3.1.3.6, Back-Channel Logout §2.4,
 * RFC 8693 §4, RFC 9396 §2, RFC 7800), and the standard claims of OpenID Connect Core §5.1 (and
 * its aggregated and distributed claims, §5.6.2), which mean what the specification says.
 */
const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'cnf', 'acr', 'amr', 'auth_time', 'nonce', 'sid', 'azp',
  'at_hash', 'c_hash', 's_hash', 'events', 'act', 'may_act', 'authorization_details', 'sub_jwk', '_claim_names', '_claim_sources',
  'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'email',
  'email_verified', 'gender', 'birthdate', 'zoneinfo', 'locale', 'phone_number', 'phone_number_verified', 'address', 'updated_at',
]);

/** Whitespace, control and format characters (bidirectional overrides, zero-width ones). */
const UNSAFE_IN_NAME = /[\s\p{Cc}\p{Cf}]/u;

/** Why a claim name cannot be mapped, or null when it can (reserved names are checked apart). */
function claimNameIssue(name: string): string | null {
  if (!name) return 'a claim name must not be empty';
  if (name.length > CLAIM_NAME_MAX) return `a claim name must be at most ${CLAIM_NAME_MAX} characters`;
  if (UNSAFE_IN_NAME.test(name)) return 'a claim name must not contain whitespace or control characters';
  return null;
}

const SOURCES_HELP = 'must be email, email_verified, name, roles, attributes, or attributes.<key>[.<key>…] (at most 5 keys)';
const ATTRIBUTE_PATH = /^attributes(\.[^.\s\p{Cc}\p{Cf}]+){1,5}$/u;

/** Where a mapped claim's value comes from. */
const claimSourceSchema = z
  .string({ error: SOURCES_HELP })
  .max(300, 'must be at most 300 characters')
  .refine((s) => ['email', 'email_verified', 'name', 'roles', 'attributes'].includes(s) || ATTRIBUTE_PATH.test(s), SOURCES_HELP);

/**
 * `{ "<claim name>": "<source>" }`, at most 20: a claim name is 1 to 100 characters without
 * whitespace or control characters (a namespaced URI such as https://example.com/dept is fine),
 * and never a reserved one.
 */
export const claimMappingsSchema = z
  .record(z.string(), claimSourceSchema, { error: 'must be an object of claim names and their sources ({"department": "attributes.department"})' })
  .superRefine((mappings, ctx) => {
    const names = Object.keys(mappings);
    if (names.length > CLAIM_MAPPINGS_MAX) ctx.addIssue({ code: 'custom', message: `at most ${CLAIM_MAPPINGS_MAX} claims` });
    for (const name of names) {
      const issue = claimNameIssue(name);
      if (issue) ctx.addIssue({ code: 'custom', path: [name], message: issue });
      else if (RESERVED_CLAIMS.has(name)) ctx.addIssue({ code: 'custom', path: [name], message: `${name} is a reserved claim (set by the identity provider, or a standard OpenID Connect claim); map it under another name` });
    }
  });

export type ClaimMappings = Record<string, string>;

/** Stored mappings (a JSON object, or client metadata) read back; anything malformed reads as none. */
export function readClaimMappings(value: unknown): ClaimMappings {
  // Most clients and APIs map nothing: asked on every ID token and userinfo response, answered without parsing.
  if (value === undefined || value === null || value === '' || value === '{}') return {};
  const parsed = claimMappingsSchema.safeParse(typeof value === 'string' ? parseAttributes(value) : value);
  return parsed.success ? parsed.data : {};
}

/** What a mapping may read of a person; `roles` is asked only when a mapping names it. */
export interface ClaimSubject {
  email: string;
  emailVerified: boolean;
  name: string | null;
  /** As stored: JSON text. */
  attributes: string;
  roles(): Promise<string[]>;
}

/** The value at a dotted path of the attributes (own properties only: `constructor` is nothing). */
function attributeAt(attributes: Attributes, path: string[]): unknown {
  let value: unknown = attributes;
  for (const key of path) {
    if (!value || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/**
 * The claims `mappings` give for a person. A source without a value (an attribute path that is
 * not there, a person without a name) gives no claim, never a null (OpenID Connect Core §5.3.2).
 */
export async function mapClaims(mappings: ClaimMappings, person: ClaimSubject): Promise<Record<string, unknown>> {
  const claims: Record<string, unknown> = {};
  let attributes: Attributes | undefined;
  let roles: Promise<string[]> | undefined;
  for (const [claim, source] of Object.entries(mappings)) {
    let value: unknown;
    if (source === 'email') value = person.email;
    else if (source === 'email_verified') value = person.emailVerified;
    else if (source === 'name') value = person.name;
    else if (source === 'roles') {
      roles ??= person.roles();
      value = await roles;
    }
    else {
      attributes ??= parseAttributes(person.attributes);
      value = source === 'attributes' ? attributes : attributeAt(attributes, source.split('.').slice(1));
    }
    if (value !== undefined && value !== null) claims[claim] = value;
  }
  return claims;
}
