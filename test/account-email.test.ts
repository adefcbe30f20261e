import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ageAccountSignIn, openAccount, postAccount } from './helpers/account.ts';
import { REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let mailbox: Mailbox;
beforeAll(async () => {
  mailbox = await startMailbox();
  server = await startServer({ SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', PRODUCT_NAME: 'Acme' });
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
});

const post = (ua: UserAgent, url: string, origin = server.issuer) => ua.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin }, body: '' });

describe('changing the email address on the account page', () => {
  it('sends a link to the new address; following it moves the account there, verified, tells the old address, and the new one signs in', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const page = await openAccount(server, ua, { email: app.email, password: app.password }, '/account/email');
    expect(page.html).toContain('Change your email address');
    const newEmail = `moved-${Date.now()}@example.com`;
    const sent = await postAccount(server, ua, page, '/account/email', { email: newEmail });
    expect(sent.status).toBe(303);
    expect(sent.headers.get('location')).toBe('/account?done=email_change_sent');
    // Nothing changes before the link is followed.
    expect((await server.current.db.prisma.user.findUniqueOrThrow({ where: { id: app.userId } })).email).toBe(app.email);

    const link = mailbox.links(await mailbox.next(newEmail)).find((l) => l.includes('/account/email/confirm/'))!;
    // Opening the link (a mail scanner, say) changes nothing; the button does.
    const confirm = await new UserAgent().request(link);
    expect(await confirm.text()).toContain('Use this address');
    expect((await server.current.db.prisma.user.findUniqueOrThrow({ where: { id: app.userId } })).email).toBe(app.email);
    const other = new UserAgent();
    expect((await post(other, link, 'https://evil.example.com')).status).toBe(403);
    const done = await post(other, link);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain(`Your account now uses ${newEmail}`);
    const user = await server.current.db.prisma.user.findUniqueOrThrow({ where: { id: app.userId } });
    expect(user).toMatchObject({ email: newEmail, emailVerified: true });
    const told = await mailbox.next(app.email);
    expect(told.subject).toBe('Your Acme email address was changed');
    expect(told.text).toContain(newEmail);
    // The link worked once; the new address signs in.
    expect((await post(new UserAgent(), link)).status).toBe(410);
    const again = await openAccount(server, new UserAgent(), { email: newEmail, password: app.password });
    expect(again.html).toContain(newEmail);
  });

  it('refuses an address another account uses when the link is followed, and a malformed or unchanged address at once', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const taken = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const page = await openAccount(server, ua, { email: app.email, password: app.password }, '/account/email');
    expect((await postAccount(server, ua, page, '/account/email', { email: 'not an address' })).status).toBe(400);
    expect((await postAccount(server, ua, page, '/account/email', { email: app.email.toUpperCase() })).status).toBe(400);
    // The page does not say the address is taken (no enumeration); the link does, and changes nothing.
    expect((await postAccount(server, ua, page, '/account/email', { email: taken.email })).status).toBe(303);
    const link = mailbox.links(await mailbox.next(taken.email)).find((l) => l.includes('/account/email/confirm/'))!;
    const refused = await post(new UserAgent(), link);
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain('This address is already in use');
    expect((await server.current.db.prisma.user.findUniqueOrThrow({ where: { id: app.userId } })).email).toBe(app.email);
  });

  it('needs a recent sign-in: after the window, the page asks for the password again first', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    await openAccount(server, ua, { email: app.email, password: app.password });
    await ageAccountSignIn(server, app.userId, 3600);
    const res = await ua.request(`${server.issuer}/account/email`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^\/account\/sign-in\?return=%2Faccount%2Femail/);
    const signIn = await ua.request(new URL(res.headers.get('location')!, server.issuer));
    expect(new URL(signIn.headers.get('location')!, server.issuer).searchParams.get('prompt')).toBe('login');
  });
});
