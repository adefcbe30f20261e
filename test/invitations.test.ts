import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let mailbox: Mailbox;
let admin: AdminApi;
beforeAll(async () => {
  mailbox = await startMailbox();
  // SIGNUP stays closed: invitations work whatever it says.
  server = await startServer({ SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', PRODUCT_NAME: 'Acme' });
  admin = await adminApi(server);
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
});

const newEmail = () => `invited-${Math.random().toString(36).slice(2)}@example.com`;
const PASSWORD = 'a long enough passphrase';

/** The invitation link of the next message to `email`. */
async function invitationLink(email: string) {
  const mail = await mailbox.next(email);
  expect(mail.subject).toBe('You are invited to Acme');
  const link = mailbox.links(mail).find((l) => l.includes('/invitation?token='));
  expect(link).toMatch(new RegExp(`^${server.issuer}/invitation\\?token=[\\w-]{43}$`));
  return link!;
}

/** Opens the invitation and submits its form; the page it answers with. */
async function accept(link: string, fields: Record<string, string>) {
  const ua = new UserAgent({ headers: { 'accept-language': 'en' } });
  const page = await ua.request(link);
  const html = await page.text();
  const action = /action="(\/invitation\?token=[^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`no invitation form (${page.status}): ${html.slice(0, 200)}`);
  const done = await ua.submit(link, html, action.replaceAll('&amp;', '&'), fields);
  return { status: done.res.status, html: await done.res.text() };
}

/** Signs in at an app with the new account; what userinfo says of it. */
async function signInAtApp(email: string, password: string) {
  const app = await seed(server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(server.issuer, app.clientId, app.clientSecret);
  const { tokens } = await loginAndExchange(new UserAgent(), config, { login: { email, password }, scope: 'openid email profile' });
  return oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
}

describe('invitations', () => {
  it('admin API → email → name and password → the person signs in at an app, with a verified address', async () => {
    const email = newEmail();
    const invited = await admin.call<{ email: string; name: string | null; expiresAt: string }>('POST', '/admin/v1/invitations', { email, name: 'Suggested Name' });
    expect(invited.status).toBe(201);
    expect(invited.body).toMatchObject({ email, name: 'Suggested Name' });
    expect(new Date(invited.body.expiresAt).getTime() - Date.now()).toBeGreaterThan(6.9 * 24 * 3600 * 1000);
    const link = await invitationLink(email);

    // A weak password is refused in words; the link still works.
    const weak = await accept(link, { name: 'Chosen Name', password: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.html).toContain('The password must be at least 8 characters long.');

    const done = await accept(link, { name: 'Chosen Name', password: PASSWORD });
    expect(done.status).toBe(200);
    expect(done.html).toContain('Your account is ready');
    expect(await signInAtApp(email, PASSWORD)).toMatchObject({ email, email_verified: true, name: 'Chosen Name' });

    const prisma = server.current.db.prisma;
    const user = await prisma.user.findUniqueOrThrow({ where: { email } });
    expect(await prisma.auditEvent.count({ where: { action: 'user.invited', target: email } })).toBe(1);
    expect(await prisma.auditEvent.count({ where: { action: 'user.invitation_accepted', target: user.id } })).toBe(1);

    // Once used, the link says so.
    const again = await new UserAgent({ headers: { 'accept-language': 'en' } }).request(link);
    expect(again.status).toBe(410);
    expect(await again.text()).toContain('Invitation already accepted');
  });

  it('CLI: idp users invite → email → the person signs in; an address that has an account is refused', async () => {
    const email = newEmail();
    const res = await idp(['users', 'invite', '--email', email, '--name', 'From CLI', '--locale', 'ko', '--json'], server.env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.json()).toMatchObject({ email, name: 'From CLI' });
    const mail = await mailbox.next(email);
    // In the language the admin chose.
    expect(mail.subject).toBe('Acme에 초대되었습니다');
    const link = mailbox.links(mail).find((l) => l.includes('/invitation?token='))!;
    expect((await accept(link, { name: 'From CLI', password: PASSWORD })).status).toBe(200);
    expect(await signInAtApp(email, PASSWORD)).toMatchObject({ email, email_verified: true });

    const refused = await idp(['users', 'invite', '--email', email], server.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already exists/);
    const api = await admin.call('POST', '/admin/v1/invitations', { email });
    expect(api.status).toBe(409);
  });

  it('a new invitation replaces the earlier one, whose link then says it expired', async () => {
    const email = newEmail();
    expect((await admin.call('POST', '/admin/v1/invitations', { email })).status).toBe(201);
    const first = await invitationLink(email);
    expect((await admin.call('POST', '/admin/v1/invitations', { email })).status).toBe(201);
    const second = await invitationLink(email);
    const old = await new UserAgent({ headers: { 'accept-language': 'en' } }).request(first);
    expect(old.status).toBe(410);
    expect(await old.text()).toContain('This invitation has expired');
    expect((await accept(second, { name: 'Second', password: PASSWORD })).status).toBe(200);
  });

  it('refuses an invitation that is not an address, or a language the pages do not speak', async () => {
    expect(await admin.call('POST', '/admin/v1/invitations', { email: 'not an address' })).toMatchObject({ status: 400 });
    expect(await admin.call('POST', '/admin/v1/invitations', { email: newEmail(), locale: 'xx' })).toMatchObject({ status: 400, body: { error_description: 'locale: must be one of en, ko' } });
    expect(await admin.call('POST', '/admin/v1/invitations', { email: newEmail() }, await admin.token('admin:read'))).toMatchObject({ status: 403 });
  });
});

describe('verification by an admin', () => {
  it('sends a new link and code (API and CLI); refuses a verified address (409) and an unknown user (404); marking verified changes the claim at once', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const sent = await admin.call('POST', `/admin/v1/users/${app.userId}/verification-email`);
    expect(sent.status).toBe(202);
    const mail = await mailbox.next(app.email);
    expect(mail.subject).toBe('Confirm your email address for Acme');
    expect(String(mail.text)).toMatch(/Or type this code: \d{6}/);

    const cli = await idp(['users', 'send-verification', app.email, '--json'], server.env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.json()).toEqual({ id: app.userId, verificationSent: true });
    const link = mailbox.links(await mailbox.next(app.email)).find((l) => l.includes('/verify-email?token='))!;

    // Signed in meanwhile: the claim says unverified, until the admin marks the address verified.
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: app, scope: 'openid email' });
    expect(await oidc.fetchUserInfo(config, tokens.access_token, app.userId)).toMatchObject({ email_verified: false });
    expect((await admin.call('PATCH', `/admin/v1/users/${app.userId}`, { emailVerified: true })).status).toBe(200);
    expect(await oidc.fetchUserInfo(config, tokens.access_token, app.userId)).toMatchObject({ email_verified: true });

    expect((await admin.call('POST', `/admin/v1/users/${app.userId}/verification-email`)).status).toBe(409);
    expect((await admin.call('POST', '/admin/v1/users/no-such-user/verification-email')).status).toBe(404);
    // The link sent before now finds the address verified.
    const page = await new UserAgent({ headers: { 'accept-language': 'en' } }).request(link);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('This email address is already confirmed.');
  });
});
