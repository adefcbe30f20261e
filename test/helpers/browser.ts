import { existsSync, mkdirSync } from 'node:fs';
import axe from 'axe-core';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** CI installs Debian's chromium (.ci/run); elsewhere the browser tests say why they were skipped. */
export const haveBrowser = existsSync(CHROMIUM) || process.env.CI === 'true';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/**
 * Runs axe-core in the page against WCAG 2.0, 2.1 and 2.2 A and AA and axe's best practices.
 * (Evaluated through the DevTools protocol, so the page's own CSP, which allows no inline script,
 * stays as it is.)
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axe.source);
  const result = await page.evaluate(async () => {
    const { axe, document } = globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> }; document: unknown };
    return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
  });
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
}

/** Where screenshots of every page go, for a reviewer to look at (not committed). */
const SCREENSHOTS = new URL('../../test-artifacts/pages/', import.meta.url).pathname;

export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return `${SCREENSHOTS}${name}.png`;
}

/**
 * A new browser context on a phone-sized screen (390 × 844) in `locale` (en or ko), with one page
 * whose problems (CSP violations, uncaught errors) are collected for checkPhonePage.
 */
export async function phonePage(browser: Browser, locale: string) {
  const context = await browser.newContext({ locale: locale === 'ko' ? 'ko-KR' : 'en-US', viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (/Content Security Policy|Uncaught/i.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(err.message));
  return { context, page, problems };
}

/**
 * A page as a person gets it on a phone (390 px): screenshot taken, in their language, accessible,
 * no sideways scrolling, and none of the `problems` the page reported (CSP violations, errors).
 */
export async function checkPhonePage(page: Page, name: string, locale: string, problems: string[]) {
  await page.screenshot({ path: screenshotPath(`${name}.${locale}.390`), fullPage: true });
  expect(await page.getAttribute('html', 'lang')).toBe(locale);
  expect(await axeViolations(page), name).toEqual([]);
  expect(await page.evaluate(() => document.documentElement.scrollWidth), name).toBeLessThanOrEqual(390);
  expect(problems).toEqual([]);
}
