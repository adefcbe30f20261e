import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import { axeViolations } from './browser.ts';

/** A console tab that records CSP violations and page errors, for the test to assert none happened. */
export interface ConsoleTab {
  page: Page;
  cspViolations: string[];
  errors: string[];
}

export async function openConsole(browser: Browser, issuer: string, opts: { width?: number; locale?: string } = {}): Promise<ConsoleTab> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: 900 }, locale: opts.locale ?? 'en-US', permissions: ['clipboard-read', 'clipboard-write'] });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const tab: ConsoleTab = { page, cspViolations: [], errors: [] };
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) tab.cspViolations.push(msg.text());
  });
  page.on('pageerror', (err) => tab.errors.push(err.message));
  await page.goto(`${issuer}/console/`);
  return tab;
}

/** Signs in on the IdP's own sign-in page, where the console sent the browser. */
export async function signInToConsole(tab: ConsoleTab, email: string, password: string): Promise<void> {
  const { page } = tab;
  await page.getByLabel(/^(Email|이메일)/).first().fill(email);
  await page.getByLabel(/^(Password|비밀번호)/).first().fill(password);
  await page.getByRole('button', { name: /^(Sign in|로그인)$/ }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/console/') && !u.pathname.startsWith('/console/callback'));
}

/** axe-core finds nothing on the page as it is now. */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  expect({ what, violations: await axeViolations(page) }).toEqual({ what, violations: [] });
}
