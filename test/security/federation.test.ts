// Federation (Sign in with Google): OIDC Core §3.1.3.7 (ID token validation), §15.5.2 (nonce);
// RFC 9700 §4.7 (CSRF at the client: state), §4.2 (mix-up); linking by (issuer, subject), never by
// an unverified email (ASVS V6.8).
import { describe, expect, it } from 'vitest';
import { idp } from '../helpers/cli.ts';
import { REDIRECT_URI } from '../helpers/flow.ts';
import { account, auditCount, callback, federationContext, finishAtApp, loginPage, pressButton } from '../helpers/federation.ts';
import { startForgingUpstream } from '../helpers/upstream.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';
import { stored } from '../helpers/stored.ts';

const ctx = federationContext();

describe('sign-in with an upstream provider', () => {
  it('SEC-FD-01 an unverified upstream email is never linked to an existing account, and the answer does not say whether one exists', async () => {
    const victim = await idp(['users', 'create', '--email', 'victim@example.com', '--password', 'victim password', '--json'], ctx.server.env);
    const victimId = victim.json<{ id: string }>().id;
    const answers = [];
    for (const email of ['victim@example.com', 'nobody-has-this@example.com']) {
      ctx.google.signInAs(account({ email, email_verified: false }));
      const ua = new UserAgent();
      const { step } = await pressButton(ctx, ua);
      answers.push({ status: step.res.status, page: (await step.res.text()).replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '') });
      expect(ua.cookies.has('_session')).toBe(false);
    }
    expect(answers[0]!.status).toBe(403);
    expect(answers[0]!.page).toContain('has not verified the email address');
    expect(answers[1]).toEqual(answers[0]);
    expect((await ctx.admin.call<{ items: unknown[] }>('GET', `/admin/v1/users/${victimId}/identities`)).body.items).toEqual([]);
  });

  it('SEC-FD-09 an unverified upstream email creates no account and reserves nothing: its owner signs up through a verified one, an admin can create it', async () => {
    const users = () => ctx.server.current.db.prisma.user.count();
    for (const email of ['pre-hijack@example.com', 'admin-made@example.com']) {
      ctx.google.signInAs(account({ email, email_verified: false }));
      const before = await users();
      const { step } = await pressButton(ctx, new UserAgent());
      expect(step.res.status).toBe(403);
      expect(await users()).toBe(before);
    }
    // The verified owner signs in just in time and gets the address.
    ctx.google.signInAs(account({ email: 'pre-hijack@example.com', email_verified: true }));
    const ua = new UserAgent();
    const owner = await pressButton(ctx, ua);
    const sub = (await finishAtApp(ctx, ua, owner.step, owner.pending)).claims()!.sub;
    expect(await ctx.server.current.db.prisma.user.findUnique({ where: { id: sub } })).toMatchObject({ email: 'pre-hijack@example.com', emailVerified: true });
    // And an admin can create the other one.
    expect((await idp(['users', 'create', '--email', 'admin-made@example.com', '--password', 'admin made password', '--json'], ctx.server.env)).code).toBe(0);
  });

  it('SEC-FD-02 a verified email is linked to an existing password account only after the password is proven; the link is remembered by (issuer, subject)', async () => {
    const local = await idp(['users', 'create', '--email', 'linda@example.com', '--password', 'linda password', '--json'], ctx.server.env);
    const lindaId = local.json<{ id: string }>().id;
    const person = account({ email: 'Linda@Example.com', email_verified: true });
    ctx.google.signInAs(person);
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ctx, ua);
    let html = await step.res.text();
    expect(html).toContain('Link your account');

    const wrong = await ua.submit(step.url, html, formAction(html, '/link'), { link: /name="link" value="([^"]+)"/.exec(html)![1]!, password: 'not it at all' });
    expect(wrong.res.status).toBe(401);
    html = await wrong.res.text();
    expect(html).toContain('Incorrect password.');
    expect((await ctx.admin.call<{ items: unknown[] }>('GET', `/admin/v1/users/${lindaId}/identities`)).body.items).toEqual([]);
    // A wrong password here counts against the account like a failed sign-in.
    const key = await ctx.server.current.services.throttle.accountKey('linda@example.com');
    const failures = () => stored(ctx.server).throttleFailures(key);
    expect(await failures()).toBe(1);

    const right = await ua.submit(step.url, html, formAction(html, '/link'), { link: /name="link" value="([^"]+)"/.exec(html)![1]!, password: 'linda password' }, REDIRECT_URI);
    const tokens = await finishAtApp(ctx, ua, right, pending);
    expect(tokens.claims()!.sub).toBe(lindaId);
    expect(tokens.claims()!.amr).toEqual(['fed', 'pwd']);
    // A right password forgets the failures (the row, at zero, goes at the next purge).
    expect((await failures()) ?? 0).toBe(0);

    // Remembered: the next Google sign-in goes straight through.
    ctx.google.signInAs(person);
    const later = new UserAgent();
    const next = await pressButton(ctx, later);
    const tokens2 = await finishAtApp(ctx, later, next.step, next.pending);
    expect(tokens2.claims()!.sub).toBe(lindaId);

    // Linda has a password and Google: Google can be unlinked; a Google-only user's last identity cannot.
    const identities = await ctx.admin.call<{ items: { id: string }[] }>('GET', `/admin/v1/users/${lindaId}/identities`);
    expect((await ctx.admin.call('DELETE', `/admin/v1/users/${lindaId}/identities/${identities.body.items[0]!.id}`)).status).toBe(204);
    const onlyGoogle = account();
    ctx.google.signInAs(onlyGoogle);
    const ua3 = new UserAgent();
    const third = await pressButton(ctx, ua3);
    const sub = (await finishAtApp(ctx, ua3, third.step, third.pending)).claims()!.sub;
    const ids = await ctx.admin.call<{ items: { id: string }[] }>('GET', `/admin/v1/users/${sub}/identities`);
    const refused = await ctx.admin.call('DELETE', `/admin/v1/users/${sub}/identities/${ids.body.items[0]!.id}`);
    expect(refused.status).toBe(409);
    const cli = await idp(['users', 'unlink', sub, '--identity', ids.body.items[0]!.id], ctx.server.env);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('only way to sign in');
  });

  it('SEC-FD-03 a forged state, a callback in another browser and a replayed callback are refused', async () => {
    const forged = await fetch(`${callback(ctx.server.issuer, 'google')}?state=forged&code=x`, { redirect: 'manual' });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('This sign-in cannot be completed');

    // Stop at our callback, so the same URL can be presented twice.
    ctx.google.signInAs(account());
    const ua = new UserAgent();
    const { url, html } = await loginPage(ctx, ua);
    const atCallback = await ua.submit(url, html, formAction(html, '/federated/google'), {}, callback(ctx.server.issuer, 'google'));
    const callbackUrl = atCallback.url;
    expect(callbackUrl).toContain('code=');

    // Another browser (no interaction cookie) presenting it is refused.
    const thief = new UserAgent();
    const stolen = await thief.follow(callbackUrl);
    expect(stolen.res.status).toBe(400);
    expect(thief.cookies.has('_session')).toBe(false);

    // The first use by the right browser works, a replay does not.
    const first = await ua.follow(callbackUrl, REDIRECT_URI);
    expect(first.res.status).toBe(200);
    expect(await first.res.text()).toContain('Allow access');
    const replay = await ua.follow(callbackUrl);
    expect(replay.res.status).toBe(400);
  });

});

describe('linking by (issuer, subject)', () => {
  it('SEC-FD-04 another upstream subject with the same verified email is not the linked identity: it must prove the password too', async () => {
    const local = await idp(['users', 'create', '--email', 'olga@example.com', '--password', 'olga password 1', '--json'], ctx.server.env);
    expect(local.code, local.stderr).toBe(0);
    const olgaId = local.json<{ id: string }>().id;
    // Olga links her Google account.
    const olga = account({ email: 'olga@example.com' });
    ctx.google.signInAs(olga);
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ctx, ua);
    const html = await step.res.text();
    const linked = await ua.submit(step.url, html, formAction(html, '/link'), { link: /name="link" value="([^"]+)"/.exec(html)![1]!, password: 'olga password 1' }, REDIRECT_URI);
    expect((await finishAtApp(ctx, ua, linked, pending)).claims()!.sub).toBe(olgaId);

    // Another Google account claiming the same verified email is not waved through.
    ctx.google.signInAs(account({ email: 'olga@example.com' }));
    const intruder = new UserAgent();
    const attempt = await pressButton(ctx, intruder);
    expect(await attempt.step.res.text()).toContain('Link your account');
    expect(intruder.cookies.has('_session')).toBe(false);
    const identities = await ctx.admin.call<{ items: { subject: string }[] }>('GET', `/admin/v1/users/${olgaId}/identities`);
    expect(identities.body.items.map((i) => i.subject)).toEqual([olga.sub]);
  });

  it('SEC-FD-07 the link form refuses a post without its CSRF token or from another origin', async () => {
    const petra = await idp(['users', 'create', '--email', 'petra@example.com', '--password', 'petra password 1', '--json'], ctx.server.env);
    expect(petra.code, petra.stderr).toBe(0);
    ctx.google.signInAs(account({ email: 'petra@example.com' }));
    const ua = new UserAgent();
    const { step } = await pressButton(ctx, ua);
    const html = await step.res.text();
    const action = new URL(formAction(html, '/link'), step.url);
    const link = /name="link" value="([^"]+)"/.exec(html)![1]!;
    const send = (fields: Record<string, string>, origin: string, site: string) =>
      ua.request(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': site }, body: new URLSearchParams({ link, password: 'petra password 1', ...fields }) });
    expect((await send({}, ctx.server.issuer, 'same-origin')).status).toBe(403);
    expect((await send({ _csrf: /name="_csrf" value="([^"]+)"/.exec(html)![1]! }, 'https://evil.example', 'cross-site')).status).toBe(403);
    expect(ua.cookies.has('_session')).toBe(false);
  });

  it('SEC-FD-10 one sign-in page starts at most ten upstream sign-ins (each is stored until it expires); then 429, and nothing more is stored', async () => {
    const ua = new UserAgent();
    const { url, html } = await loginPage(ctx, ua);
    const pending = () => stored(ctx.server).count('FederatedLogin');
    const before = await pending();
    const presses = [];
    for (let i = 0; i < 12; i++) {
      const res = await ua.request(new URL(formAction(html, '/federated/google'), url), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer },
        body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]+)"/.exec(html)![1]! }),
      });
      presses.push(res.status);
      if (res.status === 429) expect(await res.text()).toContain('Too many sign-ins with another service were started from this page');
    }
    expect(presses).toEqual([...Array(10).fill(303), 429, 429]);
    expect(await pending()).toBe(before + 10);
  });

  it('SEC-FD-08 of parallel wrong passwords on the link page, at most five are checked: four say so, the fifth and the rest end the link', async () => {
    const rita = await idp(['users', 'create', '--email', 'rita@example.com', '--password', 'rita password 1', '--json'], ctx.server.env);
    expect(rita.code, rita.stderr).toBe(0);
    ctx.google.signInAs(account({ email: 'rita@example.com' }));
    const ua = new UserAgent();
    const { step } = await pressButton(ctx, ua);
    const html = await step.res.text();
    const link = /name="link" value="([^"]+)"/.exec(html)![1]!;
    const guesses = await Promise.all(Array.from({ length: 12 }, (_, i) => ua.submit(step.url, html, formAction(html, '/link'), { link, password: `guess number ${i}` }).then((r) => r.res.status)));
    expect(guesses.filter((s) => s === 401)).toHaveLength(4);
    expect(guesses.filter((s) => s !== 401).every((s) => s === 400)).toBe(true);
    // The link request has ended: even the right password no longer links.
    const right = await ua.submit(step.url, html, formAction(html, '/link'), { link, password: 'rita password 1' });
    expect(right.res.status).toBe(400);
    expect(ua.cookies.has('_session')).toBe(false);
    expect((await ctx.admin.call<{ items: unknown[] }>('GET', `/admin/v1/users/${rita.json<{ id: string }>().id}/identities`)).body.items).toEqual([]);
  });
});

describe('Workspace domains (hd)', () => {
  it('SEC-FD-05 with allowed Workspace domains, only accounts of those domains (hd) are admitted', async () => {
    const created = await ctx.admin.call('POST', '/admin/v1/providers', {
      id: 'workspace', name: 'Acme Google', issuer: ctx.google.issuer, clientId: ctx.google.clientId, clientSecret: ctx.google.clientSecret, hostedDomains: ['acme.example'],
    });
    expect(created.status).toBe(201);
    ctx.google.signInAs(account({ hd: 'other.example' }));
    const ua = new UserAgent();
    const refused = await pressButton(ctx, ua, 'workspace');
    expect(refused.step.res.status).toBe(403);
    expect(await refused.step.res.text()).toContain('not from an allowed organization');
    expect(await auditCount(ctx, 'federation.domain_refused')).toBe(1);

    ctx.google.signInAs(account({ hd: 'acme.example' }));
    const ok = new UserAgent();
    const admitted = await pressButton(ctx, ok, 'workspace');
    const tokens = await finishAtApp(ctx, ok, admitted.step, admitted.pending);
    expect(tokens.claims()!.amr).toEqual(['fed']);
    await ctx.admin.call('DELETE', '/admin/v1/providers/workspace');
  });
});

describe('upstream ID tokens that fail validation', () => {
  it.each([['bad-signature'], ['wrong-audience'], ['wrong-issuer'], ['wrong-nonce'], ['expired'], ['alg-none']] as const)('SEC-FD-06 an upstream ID token with %s is refused: 400, no one signed in, no user created, an audit event', async (mode) => {
    const forger = await startForgingUpstream(mode);
    const id = `forged-${mode}`;
    await ctx.admin.call('POST', '/admin/v1/providers', { id, name: 'Forger', issuer: forger.issuer, clientId: forger.clientId, clientSecret: forger.clientSecret });
    const before = await auditCount(ctx, 'federation.id_token_rejected');
    const users = (await ctx.admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total;
    const ua = new UserAgent();
    const { step } = await pressButton(ctx, ua, id);
    expect(step.res.status).toBe(400);
    expect(await step.res.text()).toContain('This sign-in cannot be completed');
    expect(ua.cookies.has('_session')).toBe(false);
    expect(await auditCount(ctx, 'federation.id_token_rejected')).toBe(before + 1);
    expect((await ctx.admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total).toBe(users);
    await ctx.admin.call('DELETE', `/admin/v1/providers/${id}`);
    await forger.close();
  });
});

