import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/index.ts';
import { composeMail, type MailSpec } from '../../src/mail/compose.ts';
import { createServices } from '../../src/services.ts';

/**
 * The words of a message kind of the tests' own (`mail.notice.*`), in English and Korean, added by
 * a theme as an operator would add them (THEME_DIR/locales): the outbox's tests do not depend on
 * the product's own messages.
 */
export const NOTICE = {
  en: { 'mail.notice.subject': 'Your {product} notice', 'mail.notice.intro': 'Here is the notice you asked for.', 'mail.notice.action': 'Open the notice', 'mail.notice.outro': 'The link works once.' },
  ko: { 'mail.notice.subject': '{product} 알림', 'mail.notice.intro': '요청하신 알림입니다.', 'mail.notice.action': '알림 열기', 'mail.notice.outro': '이 링크는 한 번만 사용할 수 있습니다.' },
} as const;

/** A THEME_DIR holding only the NOTICE words. */
export async function noticeTheme(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'idp-mail-theme-'));
  await mkdir(join(dir, 'locales'));
  for (const [lang, words] of Object.entries(NOTICE)) await writeFile(join(dir, 'locales', `${lang}.json`), JSON.stringify(words));
  return dir;
}

/**
 * Writes messages as a service does: composed in the recipient's language and enqueued inside a
 * transaction, through the services of this process on the database of a server under test
 * (whose background job delivers them). Returns their ids.
 */
export async function enqueueMail(env: Record<string, string>, specs: Omit<MailSpec, 'kind'>[]): Promise<string[]> {
  const config = loadConfig(env);
  const db = await openDatabase(config.databaseUrl);
  try {
    const services = createServices(db, config);
    await services.outbox.warm();
    return await db.prisma.$transaction(async (tx) => {
      const ids: string[] = [];
      for (const spec of specs) ids.push(await services.outbox.enqueue(tx, composeMail(services.templates, { kind: 'notice', ...spec })));
      return ids;
    });
  } finally {
    await db.close();
  }
}

/** Polls `read` until `done` holds of its value (every 20 ms, for at most `timeoutMs`), and returns that value. */
export async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
