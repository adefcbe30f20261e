import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { seed } from './helpers/seed.ts';
import { authorize, discover, REDIRECT_URI } from './helpers/flow.ts';
import { account, federationContext, finishAtApp, loginPage, pressButton } from './helpers/federation.ts';
import { addAuthenticator, totpCode } from './helpers/mfa.ts';
import { freePort, startServer } from './helpers/server.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

const ctx = federationContext();

describe('Continue with Google', () => {
  it('is not asked for a second factor unless a policy requires it: a person with an authenticator app signs in through Google with amr fed alone', async () => {
    const person = account();
    ctx.google.signInAs(person);
    const ua = new UserAgent();
    const first = await pressButton(ctx, ua);
    const sub = (await finishAtApp(ctx, ua, first.step, first.pending)).claims()!.sub;
    await addAuthenticator(ctx.server.env, { userId: sub, email: person.email! });
    ctx.google.signInAs(person);
    const again = new UserAgent();
    const second = await pressButton(ctx, again);
    const claims = (await finishAtApp(ctx, again, second.step, second.pending)).claims()!;
    expect(claims.sub).toBe(sub);
    expect(claims.amr).toEqual(['fed']);
    expect(claims.acr).toBe('urn:idp:acr:federated');
  });

  it('is asked for the second factor when the app requires one: amr fed otp mfa, acr mfa', async () => {
    const person = account();
    ctx.google.signInAs(person);
    const ua = new UserAgent();
    const first = await pressButton(ctx, ua);
    const sub = (await finishAtApp(ctx, ua, first.step, first.pending)).claims()!.sub;
    const { secret } = await addAuthenticator(ctx.server.env, { userId: sub, email: person.email! });
    // Through the admin API: the server sees the change at once.
    const requireMfa = async (on: boolean) => expect((await ctx.admin.call('PATCH', `/admin/v1/clients/${ctx.app.clientId}`, { requireMfa: on })).status).toBe(200);
    await requireMfa(true);
    try {
      ctx.google.signInAs(person);
      const again = new UserAgent();
      const second = await pressButton(ctx, again);
      const html = await second.step.res.text();
      expect(html).toContain('6-digit code');
      const done = await again.submit(second.step.url, html, formAction(html, '/two-step'), { code: totpCode(secret, 1) }, REDIRECT_URI);
      const claims = (await finishAtApp(ctx, again, done, second.pending)).claims()!;
      expect(claims.sub).toBe(sub);
      expect(claims.amr).toEqual(['fed', 'otp', 'mfa']);
      expect(claims.acr).toBe('urn:idp:acr:mfa');
    } finally {
      await requireMfa(false);
    }
  });

  it('shows the button only when configured, and signs a new user in just in time with our own sub', async () => {
    const person = account({ hd: 'example.com' });
    ctx.google.signInAs(person);
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ctx, ua);
    const tokens = await finishAtApp(ctx, ua, step, pending);
    const claims = tokens.claims()!;
    expect(claims.sub).not.toBe(person.sub);
    expect(claims.amr).toEqual(['fed']);
    expect(claims.acr).toBe('urn:idp:acr:federated');

    const info = await oidc.fetchUserInfo(ctx.config, tokens.access_token, claims.sub);
    expect(info).toMatchObject({ email: person.email, email_verified: true, name: person.name });
    const identities = await ctx.admin.call<{ items: { issuer: string; subject: string }[] }>('GET', `/admin/v1/users/${claims.sub}/identities`);
    expect(identities.body.items).toEqual([expect.objectContaining({ issuer: ctx.google.issuer, subject: person.sub })]);

    // The same Google account comes back: the same local user, no new account.
    const users = (await ctx.admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total;
    ctx.google.signInAs(person);
    const again = new UserAgent();
    const second = await pressButton(ctx, again);
    const tokens2 = await finishAtApp(ctx, again, second.step, second.pending);
    expect(tokens2.claims()!.sub).toBe(claims.sub);
    expect((await ctx.admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total).toBe(users);

    // Without GOOGLE_* there is no button.
    const plain = await startServer();
    const plainApp = await seed(plain.env, { redirectUri: REDIRECT_URI });
    const plainConfig = await discover(plain.issuer, plainApp.clientId, plainApp.clientSecret);
    const page = await authorize(new UserAgent(), plainConfig, { consent: false });
    expect(await page.last.res.text()).not.toContain('/federated/');
    await plain.close();
  });

  it('brings a cancelled upstream sign-in back to our login page, where the password still works', async () => {
    ctx.google.cancelNext();
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ctx, ua);
    expect(step.res.status).toBe(200);
    const html = await step.res.text();
    expect(html).toContain('was cancelled');
    const signedIn = await ua.submit(step.url, html, formAction(html, '/login'), { email: ctx.app.email, password: ctx.app.password }, REDIRECT_URI);
    const tokens = await finishAtApp(ctx, ua, signedIn, pending);
    expect(tokens.claims()!.sub).toBe(ctx.app.userId);
    expect(tokens.claims()!.amr).toEqual(['pwd']);
  });

  it('keeps password login working when Google is unreachable', async () => {
    const deadPort = await freePort();
    const down = await startServer({ GOOGLE_CLIENT_ID: 'x', GOOGLE_CLIENT_SECRET: 'y', GOOGLE_ISSUER: `http://localhost:${deadPort}` });
    const downApp = await seed(down.env, { redirectUri: REDIRECT_URI });
    const downConfig = await discover(down.issuer, downApp.clientId, downApp.clientSecret);
    const ua = new UserAgent();
    const started = await authorize(ua, downConfig, { consent: false });
    const html = await started.last.res.text();
    const pressed = await ua.submit(started.last.url, html, formAction(html, '/federated/google'), {});
    expect(pressed.res.status).toBe(503);
    const page = await pressed.res.text();
    expect(page).toContain('Google cannot be reached right now');
    const signedIn = await ua.submit(pressed.url, page, formAction(page, '/login'), { email: downApp.email, password: downApp.password }, REDIRECT_URI);
    expect(signedIn.res.status).toBe(200);
    expect(await signedIn.res.text()).toContain('Allow access');
    await down.close();
  });
});

describe('generic providers configured through the admin API', () => {
  it('appear on the login page and work; secrets are encrypted and never shown', async () => {
    const second = await ctx.admin.call<Record<string, unknown>>('POST', '/admin/v1/providers', {
      id: 'second', name: 'Second IdP', issuer: ctx.google.issuer, clientId: ctx.google.clientId, clientSecret: ctx.google.clientSecret, buttonLabel: 'Sign in with Second',
    });
    expect(second.status).toBe(201);
    expect(second.body).not.toHaveProperty('clientSecret');
    const row = await ctx.server.current.db.prisma.identityProvider.findUniqueOrThrow({ where: { id: 'second' } });
    expect(row.clientSecretEnc).toMatch(/^v1\./);
    expect(row.clientSecretEnc).not.toContain(ctx.google.clientSecret);

    const ua = new UserAgent();
    const { html } = await loginPage(ctx, ua);
    expect(html).toContain('Sign in with Second');
    // Google's own button, in Google's words.
    expect(html).toContain('Sign in with Google');

    ctx.google.signInAs(account());
    const pressed = await pressButton(ctx, new UserAgent(), 'second');
    expect(await pressed.step.res.text()).toContain('Allow access');

    // Disabled: the button disappears at once.
    await ctx.admin.call('PATCH', '/admin/v1/providers/second', { enabled: false });
    expect((await loginPage(ctx, new UserAgent())).html).not.toContain('Sign in with Second');
    expect((await ctx.admin.call('POST', '/admin/v1/providers', { id: 'google', preset: 'google', clientId: 'a', clientSecret: 'b' })).status).toBe(409);
    expect((await ctx.admin.call('POST', '/admin/v1/providers', { id: 'bad', name: 'Bad', issuer: 'http://idp.example.com', clientId: 'a', clientSecret: 'b' })).status).toBe(400);
  });
});
