import type { Templates } from '../templates/engine.ts';

/**
 * A message in words of the messages catalogue (`mail.<kind>.*`), rendered in the recipient's
 * language as a text part and an HTML part (views/mail.eta, themeable like every page).
 */
export interface MailSpec {
  /** mail.<kind>.subject, mail.<kind>.intro, mail.<kind>.action, mail.<kind>.outro are its words. */
  kind: string;
  to: string;
  lang: string;
  vars?: Record<string, string | number>;
  /** The link the message is about (a single-use link, say). */
  link?: string;
  /** A short code to type instead of following the link. */
  code?: string;
}

export interface ComposedMail {
  kind: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

export function composeMail(templates: Templates, spec: MailSpec): ComposedMail {
  // A language the catalogue has (ko-KR → ko; one it lacks → the default), which the HTML part declares too.
  const lang = templates.catalogue.negotiate({ uiLocales: spec.lang });
  const t = templates.catalogue.translator(lang);
  const vars = { product: templates.brand.productName ?? t('mail.productFallback'), ...spec.vars };
  const words = (part: string) => t(`mail.${spec.kind}.${part}`, vars);
  const has = (part: string) => templates.catalogue.messages(lang)[`mail.${spec.kind}.${part}`] !== undefined || templates.catalogue.messages(templates.catalogue.defaultLocale)[`mail.${spec.kind}.${part}`] !== undefined;
  const parts = {
    intro: words('intro'),
    action: spec.link && has('action') ? { label: words('action'), url: spec.link } : undefined,
    code: spec.code ? { label: t('mail.code'), value: spec.code } : undefined,
    outro: has('outro') ? words('outro') : undefined,
    footer: t('mail.footer', vars),
  };
  const text = [
    parts.intro,
    parts.action ? `${parts.action.label}:\n${parts.action.url}` : undefined,
    parts.code ? `${parts.code.label} ${parts.code.value}` : undefined,
    parts.outro,
    `-- \n${parts.footer}`,
  ]
    .filter(Boolean)
    .join('\n\n');
  const subject = words('subject');
  return { kind: spec.kind, to: spec.to, subject, text: `${text}\n`, html: templates.render('mail', { subject, ...parts }, lang) };
}
