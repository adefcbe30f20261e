import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

/**
 * The database statements of one whole sign-in (password, consent, code exchange), page by page,
 * counted from the server's own query metrics: each page has a budget, so that a change which
 * adds statements to the path every sign-in takes is seen here (`npm run bench:signin` lists them).
 */
const BUDGET: Record<string, number> = {
  // The interaction; the address's count of sign-ins started.
  'GET /authorize': 2,
  // The interaction (the upstream buttons are cached).
  'GET /interaction/:uid': 1,
  // The interaction; the address's and the account's counts (one statement); the account; the
  // counts settled (one); the audit; who must give a second factor (their factors, their roles);
  // the interaction.
  'POST /interaction/:uid/login': 8,
  // The interaction, used up; the grant found for the account (read once); the new session and
  // where it is used from; the consent step's interaction.
  'GET /authorize/:uid (after the login)': 6,
  // The interaction with its session and grant (one query).
  'GET /interaction/:uid (consent)': 1,
  // The interaction with its session and grant; the grant saved; the audit; the interaction.
  'POST /interaction/:uid/confirm': 4,
  // The session; the interaction with its grant, used up; the code; the session under a new id
  // (where it is used from is not written again within the minute).
  'GET /authorize/:uid (after the consent)': 6,
  // The code with its grant, used up; the access and refresh tokens.
  'POST /token': 4,
};

/**
 * With EPHEMERAL_STORE=redis (the postgresql+redis run) the interactions, sessions, codes and the
 * throttle's counts are in Redis: what stays in SQL is the account, its second-factor rules, the
 * grant, the tokens and the audit.
 */
const BUDGET_WITH_REDIS: typeof BUDGET = {
  'GET /authorize': 0,
  'GET /interaction/:uid': 0,
  // The account; the audit; who must give a second factor (their factors, their roles).
  'POST /interaction/:uid/login': 4,
  // The grant found for the account; where the new session is used from.
  'GET /authorize/:uid (after the login)': 2,
  // The interaction's grant.
  'GET /interaction/:uid (consent)': 1,
  // The grant; the grant saved; the audit.
  'POST /interaction/:uid/confirm': 3,
  // The grant.
  'GET /authorize/:uid (after the consent)': 1,
  // The code's grant; the access and refresh tokens.
  'POST /token': 3,
};

/** What the server's background work reads and writes on its own timers, not for a request. */
const BACKGROUND = new Set(['ConfigVersion', 'SigningKey', 'ServerSecret', 'Lease', 'OutboxMessage', 'LogoutDelivery']);

async function queryCount(issuer: string): Promise<number> {
  const text = await (await fetch(`${issuer}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^idp_db_query_duration_seconds_count\{([^}]*)\}\s+(\d+)$/gm)) {
    if (!BACKGROUND.has(/model="([^"]*)"/.exec(m[1]!)?.[1] ?? '')) total += Number(m[2]);
  }
  return total;
}

/** A browser whose every request is counted: the statements the server made while answering it (read to the end). */
class CountingAgent extends UserAgent {
  readonly counted: { request: string; statements: number }[] = [];
  readonly issuer: string;
  constructor(issuer: string) {
    super();
    this.issuer = issuer;
  }
  override async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const before = await queryCount(this.issuer);
    const res = await super.request(url, init);
    await res.clone().arrayBuffer();
    const path = new URL(url).pathname.replace(/^\/(interaction|authorize)\/[^/]+/, '/$1/:uid');
    this.counted.push({ request: `${init.method ?? 'GET'} ${path}`, statements: (await queryCount(this.issuer)) - before });
    return res;
  }
}

let server: TestServer;
let config: oidc.Configuration;
let user: { email: string; password: string };
beforeAll(async () => {
  server = await startServer();
  const seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
  user = seeded;
  config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
});
afterAll(async () => {
  await server?.close();
});

describe('statements per sign-in', () => {
  it('a returning person signing in with a password and consenting stays within each page’s budget of statements', async () => {
    // The first sign-in fills what every later one finds cached (the client, the upstream buttons).
    await loginAndExchange(new UserAgent(), config, { login: user });

    const agent = new CountingAgent(server.issuer);
    const before = await queryCount(server.issuer);
    const { tokens } = await loginAndExchange(agent, config, { login: user });
    const total = (await queryCount(server.issuer)) - before;
    expect(tokens.access_token).toBeTruthy();

    // The pages in the order a browser meets them, named as in the budget.
    const pages = Object.keys(BUDGET).slice(0, -1);
    expect(agent.counted.map((c) => c.request)).toEqual(pages.map((page) => page.replace(/ \(.*\)$/, '')));
    const byPage: Record<string, number> = Object.fromEntries(pages.map((page, i) => [page, agent.counted[i]!.statements]));
    byPage['POST /token'] = total - agent.counted.reduce((sum, c) => sum + c.statements, 0);
    const budget = server.env.EPHEMERAL_STORE === 'redis' ? BUDGET_WITH_REDIS : BUDGET;
    for (const [page, most] of Object.entries(budget)) expect({ page, statements: byPage[page]! <= most ? 'within budget' : byPage[page] }).toEqual({ page, statements: 'within budget' });
    expect(total).toBeLessThanOrEqual(Object.values(budget).reduce((a, b) => a + b, 0));
  });
});
