// Passkeys (WebAuthn): W3C Web Authentication Level 3 §7.1 (registration) and §7.2
// (authentication): a challenge made by the server, for one ceremony, answered once; the
// issuer's origin and RP ID only; user verification for a passkey that is the whole sign-in;
// a signature counter that must move on; the user handle of the credential's owner. NIST SP
// 800-63B §5.2.8 (replay resistance), RFC 8176 (amr).
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAccount, postAccount } from '../helpers/account.ts';
import { authorize, discover, REDIRECT_URI } from '../helpers/flow.ts';
import { passwordStep } from '../helpers/mfa.ts';
import { addPasskey, passkeyOptions, SoftAuthenticator, type Tampering } from '../helpers/passkeys.ts';
import { seed } from '../helpers/seed.ts';
import { startServer } from '../helpers/server.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';
import type { SecurityContext } from './setup.ts';

const ctx = {} as SecurityContext;
beforeAll(async () => {
  ctx.server = await startServer({ LOGIN_MAX_FAILURES: '3', LOGIN_IP_MAX_FAILURES: '1000', LOGIN_WAIT_INCREMENT_SECONDS: '60', LOGIN_MAX_WAIT_SECONDS: '900' }, { issuerHost: 'localhost' });
});
afterAll(() => ctx.server?.close());

const origin = () => new URL(ctx.server.issuer).origin;

/** A person with a passkey, and an app they sign in to. */
async function person(opts: Parameters<typeof addPasskey>[2] = {}) {
  const app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(ctx.server.issuer, app.clientId, app.clientSecret);
  return { app, config, passkey: await addPasskey(ctx.server.env, app, opts) };
}

/** A new sign-in's login page, and its passkey options. */
async function loginPage(ua: UserAgent, config: oidc.Configuration) {
  const { last } = await authorize(ua, config, { consent: false });
  const html = await last.res.text();
  return { url: last.url, html, options: passkeyOptions(html, '/passkey') };
}

/** Posts an answer to a login page's passkey form; where it ends (the app's redirect URI when signed in). */
const answer = (ua: UserAgent, page: { url: string; html: string }, response: unknown) => ua.submit(page.url, page.html, formAction(page.html, '/passkey'), { response: JSON.stringify(response) }, REDIRECT_URI);
/** Signed in: on to the app, or to its consent page (the test app asks for consent). */
const signedIn = async (step: { url: string; res: Response }) => step.url.startsWith(REDIRECT_URI) || (await step.res.text()).includes('Allow access');

describe('passkeys', () => {
  it('SEC-WA-01 a challenge answers once, only the ceremony and the sign-in (or person) it was made for', async () => {
    const { config, passkey } = await person();
    // Sign-in A succeeds; its answer replayed in sign-in B is refused.
    const a = await loginPage(new UserAgent(), config);
    const uaA = new UserAgent();
    const pageA = await loginPage(uaA, config);
    const answerA = passkey.authenticate(pageA.options);
    expect(await signedIn(await answer(uaA, pageA, answerA))).toBe(true);
    const uaB = new UserAgent();
    const pageB = await loginPage(uaB, config);
    expect((await answer(uaB, pageB, answerA)).res.status).toBe(401);
    // A challenge another sign-in holds (unused) does not answer this one either.
    expect((await answer(uaB, await loginPage(uaB, config), passkey.authenticate(a.options))).res.status).toBe(401);

    // Registration: the account page's options answer one registration; a second answer to them is refused.
    const newcomer = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    await openAccount(ctx.server, ua, { email: newcomer.email, password: newcomer.password });
    const add = await openAccount(ctx.server, ua, undefined, '/account/passkeys/add');
    const options = passkeyOptions<PublicKeyCredentialCreationOptionsJSON>(add.html, '/account/passkeys/add');
    const register = (name: string, challenge = options.challenge) => postAccount(ctx.server, ua, add, '/account/passkeys/add', { name, response: JSON.stringify(new SoftAuthenticator(origin()).register({ ...options, challenge })) });
    expect((await register('one')).status).toBe(200);
    expect((await register('two')).status).toBe(400);
    // A sign-in's challenge does not register a passkey.
    expect((await register('three', (await loginPage(new UserAgent(), config)).options.challenge)).status).toBe(400);
    expect(await ctx.server.current.db.prisma.passkey.count({ where: { userId: newcomer.userId } })).toBe(1);
  });

  it('SEC-WA-02 an answer signed for another origin or another RP ID is refused, at registration and at sign-in', async () => {
    const { config, passkey } = await person();
    const tamperings: Tampering[] = [{ origin: 'https://evil.example' }, { origin: 'http://localhost:1' }, { rpId: 'evil.example' }];
    for (const t of tamperings) {
      const ua = new UserAgent();
      const page = await loginPage(ua, config);
      const res = await answer(ua, page, passkey.authenticate(page.options, t));
      expect(res.res.status, JSON.stringify(t)).toBe(401);
    }
    const app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    for (const t of tamperings) {
      await expect(addPasskey(ctx.server.env, app, {}, t), JSON.stringify(t)).rejects.toThrow('the passkey was not added');
    }
  });

  it('SEC-WA-07 a challenge is ours only as we made it: one altered, or made up, is refused; offering a passkey writes nothing', async () => {
    const { config, passkey } = await person();
    const challenges = () => ctx.server.current.db.prisma.oidcPayload.count({ where: { model: 'PasskeyChallenge' } });
    const before = await challenges();
    const ua = new UserAgent();
    const page = await loginPage(ua, config);
    // The login page offers a passkey (its options carry a challenge) without storing anything.
    expect(page.options.challenge).toMatch(/^[\w-]{48}$/);
    expect(await challenges()).toBe(before);

    const ours = Buffer.from(page.options.challenge, 'base64url');
    const altered = (at: number) => {
      const copy = Buffer.from(ours);
      copy[at]! ^= 1;
      return copy.toString('base64url');
    };
    // The random part, when it expires, and the tag: each changed by one bit; then one made up of the same length.
    for (const challenge of [altered(0), altered(17), altered(35), Buffer.alloc(36, 7).toString('base64url')]) {
      const res = await answer(ua, page, passkey.authenticate({ ...page.options, challenge }));
      expect(res.res.status, challenge).toBe(401);
    }
    // The challenge as made still signs the person in.
    expect(await signedIn(await answer(ua, page, passkey.authenticate(page.options)))).toBe(true);
  });

  it('SEC-WA-03 a passkey that did not verify the person (presence only) is no sign-in by itself; after a password it is a second factor', async () => {
    const { app, config, passkey } = await person({ userVerification: false });
    const ua = new UserAgent();
    const page = await loginPage(ua, config);
    expect((await answer(ua, page, passkey.authenticate(page.options))).res.status).toBe(401);
    const step = await passwordStep(new UserAgent(), config, { email: app.email, password: app.password });
    expect(step.html).toContain('Use my passkey');
  });

  it('SEC-WA-04 a signature counter that does not move on (a cloned authenticator) is refused', async () => {
    const { config, passkey } = await person({ counts: true });
    const ua = new UserAgent();
    const page = await loginPage(ua, config);
    expect(await signedIn(await answer(ua, page, passkey.authenticate(page.options)))).toBe(true);
    passkey.counter = 0;
    const clone = new UserAgent();
    const again = await loginPage(clone, config);
    expect((await answer(clone, again, passkey.authenticate(again.options))).res.status).toBe(401);
  });

  it('SEC-WA-05 a discoverable passkey whose user handle names another person is refused', async () => {
    const { config, passkey } = await person();
    const other = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const page = await loginPage(ua, config);
    const res = await answer(ua, page, passkey.authenticate(page.options, { userHandle: Buffer.from(other.userId).toString('base64url') }));
    expect(res.res.status).toBe(401);
  });

  it('SEC-WA-06 passkey answers that fail after a password count as failed second factors: throttled like codes', async () => {
    const { app, config } = await person();
    const stranger = await person();
    const ua = new UserAgent();
    const step = await passwordStep(ua, config, { email: app.email, password: app.password });
    let page = { url: step.url, html: step.html };
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await ua.submit(page.url, page.html, formAction(page.html, '/two-step/passkey'), { response: JSON.stringify(stranger.passkey.authenticate(passkeyOptions(page.html, '/two-step/passkey'))) });
      statuses.push(res.res.status);
      page = { url: res.url, html: await res.res.text() };
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});
