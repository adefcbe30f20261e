/** The device authorization grant (RFC 8628) through our pages: a device client, and a person typing its code. */
import { expect } from 'vitest';
import { cliActor } from '../../src/audit/service.ts';
import { withServices } from './seed.ts';
import { formAction, type UserAgent } from './user-agent.ts';

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** A public client (no secret) allowed the device grant and refresh tokens, with no redirect URI. */
export async function deviceClient(env: Record<string, string>, grantTypes: (typeof DEVICE_GRANT | 'refresh_token')[] = [DEVICE_GRANT, 'refresh_token']) {
  return withServices(env, async ({ clients }) => {
    const { client } = await clients.create({ name: 'Living Room TV', grantTypes, scope: 'openid profile email offline_access', public: true }, cliActor());
    return client.clientId;
  });
}

/** The provider's hidden CSRF input on a device page (what a browser posts back). */
function xsrfOf(html: string): string {
  const match = /name="xsrf" value="([0-9a-f]+)"/.exec(html);
  if (!match) throw new Error('no xsrf input on the page');
  return match[1]!;
}

/** Posts a device page's form as a browser would (same origin), then follows the redirects. */
export async function postDeviceForm(ua: UserAgent, pageUrl: string, html: string, fields: Record<string, string>) {
  const target = new URL('/device', pageUrl).href;
  const res = await ua.request(target, {
    method: 'POST',
    body: new URLSearchParams({ xsrf: xsrfOf(html), ...fields }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(pageUrl).origin },
  });
  if (res.status < 300 || res.status >= 400) return { res, url: target, html: await res.text() };
  const step = await ua.follow(new URL(res.headers.get('location')!, target));
  return { ...step, html: await step.res.text() };
}

/** Opens verification_uri and types `typed` (the user code, as a person would type it): the confirmation page. */
export async function typeCode(ua: UserAgent, verificationUri: string, typed: string) {
  const input = await ua.follow(verificationUri);
  expect(input.res.status).toBe(200);
  const html = await input.res.text();
  return postDeviceForm(ua, input.url, html, { user_code: typed });
}

/** From the confirmation page: approve (`abort` false) or cancel, then sign in and consent (or deny) on our pages. */
export async function approve(ua: UserAgent, confirm: { url: string; html: string }, opts: { login?: { email: string; password: string }; deny?: boolean } = {}) {
  const userCode = /name="user_code" value="([^"]+)"/.exec(confirm.html)![1]!;
  let step = await postDeviceForm(ua, confirm.url, confirm.html, { user_code: userCode, confirm: 'yes' });
  if (opts.login) {
    expect(step.html).toContain('Sign in');
    const next = await ua.submit(step.url, step.html, formAction(step.html, '/login'), opts.login);
    step = { ...next, html: await next.res.text() };
  }
  expect(step.html).toContain('Allow access');
  const next = await ua.submit(step.url, step.html, formAction(step.html, opts.deny ? '/abort' : '/confirm'), {});
  return { ...next, html: await next.res.text() };
}
