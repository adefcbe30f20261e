import { openDatabase } from '../../src/db/index.ts';
import type { TestServer } from './server.ts';
import { csrfToken, formAction, type UserAgent } from './user-agent.ts';

export interface AccountPage {
  url: string;
  status: number;
  html: string;
}

/**
 * Opens `path` of the account page in `ua`, as a browser would: when it is sent to sign in and
 * the sign-in page shows, signs in with `login`. The page it lands on.
 */
export async function openAccount(server: TestServer, ua: UserAgent, login?: { email: string; password: string }, path = '/account'): Promise<AccountPage> {
  let step = await ua.follow(`${server.issuer}${path}`);
  if (login && new URL(step.url).pathname.startsWith('/interaction/')) {
    const html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/login'), login);
  }
  return { url: step.url, status: step.res.status, html: await step.res.text() };
}

/** Posts one of the account page's forms as the page would (its CSRF token, from this site); the answer, not followed. */
export function postAccount(server: TestServer, ua: UserAgent, page: Pick<AccountPage, 'html'>, action: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return ua.request(`${server.issuer}${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.issuer, 'sec-fetch-site': 'same-origin', ...headers },
    body: new URLSearchParams({ _csrf: csrfToken(page.html), ...fields }),
  });
}

/** The forms of a page whose action matches `pattern` (their paths). */
export const actions = (html: string, pattern: RegExp): string[] => [...html.matchAll(/action="([^"]+)"/g)].map((m) => m[1]!).filter((a) => pattern.test(a));

/** Makes every account page session of the user `seconds` older in its sign-in time (instead of waiting). */
export async function ageAccountSignIn(server: TestServer, userId: string, seconds: number): Promise<number> {
  const db = await openDatabase(server.databaseUrl);
  try {
    const rows = await db.prisma.oidcPayload.findMany({ where: { model: 'AccountSession' } });
    let aged = 0;
    for (const row of rows) {
      const payload = JSON.parse(row.payload) as { userId: string; authTime: number };
      if (payload.userId !== userId) continue;
      await db.prisma.oidcPayload.update({ where: { model_id: { model: row.model, id: row.id } }, data: { payload: JSON.stringify({ ...payload, authTime: payload.authTime - seconds }) } });
      aged++;
    }
    return aged;
  } finally {
    await db.close();
  }
}
