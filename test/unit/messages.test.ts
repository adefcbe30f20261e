import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createCatalogue, keyFamily, loadMessages } from '../../src/i18n/catalogue.ts';

const VIEWS = new URL('../../views/', import.meta.url).pathname;
const SRC = new URL('../../src/', import.meta.url).pathname;
const all = loadMessages();
const en = all.get('en')!;

const families = (messages: Readonly<Record<string, string>>) => new Set(Object.keys(messages).map(keyFamily));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${dir}${f}`);
}

describe('the messages catalogue', () => {
  it('holds English and Korean, and every language has exactly the messages English has', () => {
    expect([...all.keys()].sort()).toEqual(expect.arrayContaining(['en', 'ko']));
    const english = families(en);
    for (const [locale, messages] of all) {
      const own = families(messages);
      expect({ locale, missing: [...english].filter((k) => !own.has(k)) }).toEqual({ locale, missing: [] });
      expect({ locale, unknown: [...own].filter((k) => !english.has(k)) }).toEqual({ locale, unknown: [] });
      // A message with plural forms always has the catch-all form.
      for (const key of Object.keys(messages)) if (keyFamily(key) !== key) expect(messages[`${keyFamily(key)}.other`], `${locale}: ${key}`).toBeDefined();
      // The same placeholders in every language.
      for (const [key, text] of Object.entries(messages)) {
        const names = (t: string | undefined) => [...(t ?? '').matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
        const englishText = en[key] ?? en[`${keyFamily(key)}.other`];
        expect({ key, locale, names: names(text) }).toEqual({ key, locale, names: names(englishText) });
      }
    }
  });

  it('has every key that a template or a page handler names', () => {
    const named = new Set<string>();
    for (const file of readdirSync(VIEWS).filter((f) => f.endsWith('.eta'))) {
      for (const m of readFileSync(`${VIEWS}${file}`, 'utf8').matchAll(/it\.t\('([\w.:]+)'\s*[,)]/g)) named.add(m[1]!);
    }
    for (const file of sourceFiles(`${SRC}http/`)) {
      for (const m of readFileSync(file, 'utf8').matchAll(/key: '([\w.:]+)'/g)) named.add(m[1]!);
    }
    // Keys built from a code: the error pages, the upstream refusals, the scopes.
    for (const page of ['interaction_expired', 'interaction_unknown', 'form_rejected', 'too_many_requests', 'logout_rejected', 'federation_rejected', 'temporarily_unavailable', 'server_error', 'too_many_attempts', 'too_many_sign_ins', 'too_many_resets', 'reset_spent', 'reset_unknown', 'not_found', 'console_missing', 'use_https', 'invalid_client', 'invalid_redirect_uri', 'invalid_scope', 'invalid_target', 'unauthorized_client', 'request', 'malformed']) {
      named.add(`error.${page}.title`).add(`error.${page}.message`);
    }
    for (const reason of ['disabled', 'noEmail', 'emailUnverified', 'accountExists', 'upstreamError', 'organization']) named.add(`federation.refused.${reason}`);
    for (const scope of ['openid', 'profile', 'email', 'offline_access']) named.add(`scope.${scope}`);
    for (const problem of ['too_short', 'too_long', 'common']) named.add(`password.${problem}`);
    // The device flow's refusals of a typed user code (src/http/provider-pages.ts).
    for (const problem of ['wrong', 'expired', 'used', 'failed']) named.add(`device.problem.${problem}`);
    named.add('login.notice.password_changed');
    // Every email (src/mail/compose.ts): its subject and first paragraph at least.
    for (const kind of ['password_reset', 'password_changed']) named.add(`mail.${kind}.subject`).add(`mail.${kind}.intro`);
    // The account page's emails (src/account/self-service.ts).
    for (const page of ['email_changed', 'email_change_spent', 'email_taken']) named.add(`notice.${page}.title`).add(`notice.${page}.message`);
    for (const kind of ['email_change', 'email_changed']) named.add(`mail.${kind}.subject`).add(`mail.${kind}.intro`);
    for (const kind of ['account_password_changed', 'account_deleted', 'mfa_recovery_code_used', 'mfa_reset']) named.add(`mail.${kind}.subject`).add(`mail.${kind}.intro`);
    for (const scope of ['admin', 'admin:read']) named.add(`adminScope.${scope}`);
    // Sign-up, email verification and invitations: their error and notice pages, and their emails.
    for (const page of ['signup_closed', 'too_many_signups', 'too_many_emails', 'verify_unknown', 'invitation_spent', 'invitation_unknown', 'invitation_exists']) named.add(`error.${page}.title`).add(`error.${page}.message`);
    for (const page of ['email_verified', 'email_already_verified', 'verification_sent', 'invitation_accepted', 'invitation_already_accepted']) named.add(`notice.${page}.title`).add(`notice.${page}.message`);
    for (const kind of ['verify_email', 'account_exists', 'invitation']) named.add(`mail.${kind}.subject`).add(`mail.${kind}.intro`);
    const english = families(en);
    expect([...named].filter((k) => !english.has(k))).toEqual([]);
  });

  it('has every key the admin console names (console.<key>)', () => {
    const CONSOLE = new URL('../../console/src/', import.meta.url).pathname;
    const named = new Set<string>();
    for (const file of readdirSync(CONSOLE, { recursive: true, encoding: 'utf8' }).filter((f) => /\.tsx?$/.test(f))) {
      for (const m of readFileSync(`${CONSOLE}${file}`, 'utf8').matchAll(/\bt\('([\w.:-]+)'\s*[,)]/g)) named.add(`console.${m[1]}`);
    }
    expect(named.size).toBeGreaterThan(20);
    const english = families(en);
    expect([...named].filter((k) => !english.has(k))).toEqual([]);
  });

  it('leaves no words in a template outside the catalogue', () => {
    const literal: string[] = [];
    for (const file of readdirSync(VIEWS).filter((f) => f.endsWith('.eta'))) {
      const source = readFileSync(`${VIEWS}${file}`, 'utf8');
      const text = source
        .replace(/<%[\s\S]*?%>/g, ' ')
        .replace(/<svg[\s\S]*?<\/svg>/g, ' ')
        .replace(/<[^>]*>/g, ' ');
      // Only separators may stand between tags and template code.
      for (const word of text.split(/\s+/).filter((w) => w && !/^[·:,.?!()–-]+$/.test(w))) literal.push(`${file}: ${word}`);
      // Attributes a person reads (or hears) must come from the catalogue too.
      for (const m of source.matchAll(/\b(alt|title|placeholder|aria-label|data-show|data-hide)="([^"<]+)"/g)) literal.push(`${file}: ${m[1]}="${m[2]}"`);
    }
    expect(literal).toEqual([]);
  });
});

describe('choosing the language', () => {
  const catalogue = createCatalogue('en', all);

  it('takes ui_locales first, then the switcher’s cookie, then Accept-Language, then the default', () => {
    expect(catalogue.negotiate({ uiLocales: 'ko', cookie: 'en', acceptLanguage: 'en' })).toBe('ko');
    expect(catalogue.negotiate({ uiLocales: 'fr-CA ko-KR', acceptLanguage: 'en' })).toBe('ko');
    expect(catalogue.negotiate({ cookie: 'ko', acceptLanguage: 'en-US,en;q=0.9' })).toBe('ko');
    expect(catalogue.negotiate({ cookie: 'en', acceptLanguage: 'ko-KR,ko;q=0.9' })).toBe('en');
    expect(catalogue.negotiate({ acceptLanguage: 'fr-FR,ko;q=0.8,en;q=0.5' })).toBe('ko');
    expect(catalogue.negotiate({ acceptLanguage: 'ko;q=0,en' })).toBe('en');
    expect(catalogue.negotiate({ uiLocales: 'fr', cookie: 'de', acceptLanguage: 'es' })).toBe('en');
    expect(createCatalogue('ko', all).negotiate({})).toBe('ko');
  });

  it('fills placeholders and picks the plural form', () => {
    const t = catalogue.translator('en');
    expect(t('login.titleProduct', { product: 'Acme' })).toBe('Sign in to Acme');
    expect(t('login.throttled', { count: 1 })).toBe('Too many failed sign-in attempts. Try again in 1 minute.');
    expect(t('login.throttled', { count: 5 })).toBe('Too many failed sign-in attempts. Try again in 5 minutes.');
    expect(catalogue.translator('ko')('login.throttled', { count: 1 })).toBe('로그인 실패 횟수가 너무 많습니다. 1분 후에 다시 시도하세요.');
  });

  it('refuses a default language it has no messages for', () => {
    expect(() => createCatalogue('fr', all)).toThrow(/DEFAULT_LOCALE: no messages for "fr" \(available: en, ko\)/);
  });
});
