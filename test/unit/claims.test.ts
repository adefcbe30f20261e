// The rules of custom claims (src/lib/claims.ts), without a server: attributes' bounds, mapping
// names and sources, and what a mapping gives for a person.
import { describe, expect, it } from 'vitest';
import { attributesSchema, claimMappingsSchema, mapClaims, parseAttributes, readClaimMappings } from '../../src/lib/claims.ts';

const person = (attributes: unknown, roles: string[] = ['clerk']) => ({
  email: 'alice@example.com',
  emailVerified: true,
  name: null,
  attributes: JSON.stringify(attributes),
  roles: async () => roles,
});

describe('attributes', () => {
  it('are a JSON object of at most 4096 bytes, nested at most 5 levels', () => {
    expect(attributesSchema.safeParse({ a: { b: { c: { d: { e: 1 } } } } }).success).toBe(true);
    expect(attributesSchema.safeParse({ a: { b: { c: { d: { e: [1] } } } } }).success).toBe(false);
    expect(attributesSchema.safeParse({ s: 'é'.repeat(2040) }).success).toBe(true);
    expect(attributesSchema.safeParse({ s: 'é'.repeat(2050) }).error?.issues[0]?.message).toMatch(/at most 4096 bytes as JSON \(this is 4108\)/);
    for (const value of [[], 'x', 1, null, true]) expect(attributesSchema.safeParse(value).error?.issues[0]?.message).toBe('must be a JSON object');
  });

  it('stored text that is not an object reads as none', () => {
    expect(parseAttributes('{"a":1}')).toEqual({ a: 1 });
    for (const stored of ['', '[1]', 'null', '{', '"x"', null]) expect(parseAttributes(stored)).toEqual({});
  });

  it('a deeply nested value is refused without overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(attributesSchema.safeParse({ deep }).success).toBe(false);
  });
});

describe('claim mappings', () => {
  it.each([
    [{ department: 'attributes.department', 'https://example.com/x': 'attributes.a.b.c.d.e', all: 'attributes', r: 'roles', m: 'email', v: 'email_verified', n: 'name' }, true],
    [{ roles: 'roles' }, true],
    [{ sub: 'email' }, false],
    [{ updated_at: 'name' }, false],
    [{ x: 'attributes.' }, false],
    [{ x: 'attributes.a..b' }, false],
    [{ x: 'attributes.a.b.c.d.e.f' }, false],
    [{ x: 'Attributes.a' }, false],
    [{ 'a b': 'email' }, false],
    [{ 'a\u200b': 'email' }, false],
  ])('%j valid: %s', (mappings, valid) => {
    expect(claimMappingsSchema.safeParse(mappings).success).toBe(valid);
  });

  it('stored mappings that are not valid read as none', () => {
    expect(readClaimMappings('{"dept":"attributes.dept"}')).toEqual({ dept: 'attributes.dept' });
    expect(readClaimMappings({ iss: 'email' })).toEqual({});
    expect(readClaimMappings(undefined)).toEqual({});
  });

  it('give the values the person has, and no claim (never null) for the others; roles are read only when mapped', async () => {
    let asked = 0;
    const who = { ...person({ dept: 'Sales', n: null, list: ['a', 'b'], nested: { x: 0, f: false } }), roles: async () => {
        asked++;
        return ['clerk'];
      },
    };
    expect(await mapClaims({ d: 'attributes.dept', gone: 'attributes.nope', nul: 'attributes.n', second: 'attributes.list.1', zero: 'attributes.nested.x', no: 'attributes.nested.f', display: 'name', mail: 'email', v: 'email_verified' }, who)).toEqual({
      d: 'Sales',
      second: 'b',
      zero: 0,
      no: false,
      mail: 'alice@example.com',
      v: true,
    });
    expect(asked).toBe(0);
    expect(await mapClaims({ a: 'roles', b: 'roles' }, who)).toEqual({ a: ['clerk'], b: ['clerk'] });
    expect(asked).toBe(1);
  });
});
