import type { ComponentChildren } from 'preact';
import { get } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { currentLocale, languageName, t } from '../i18n.ts';
import { Loading, Screen, Table, useLoad } from '../ui.tsx';

/** What GET /settings shows of the server's configuration (src/http/admin/settings.ts). Durations in seconds. */
export interface ServerSettings {
  issuer: string;
  brand: { productName: string | null; colour: string; logoUrl: string | null; faviconUrl: string | null; supportUrl: string | null; termsUrl: string | null; privacyUrl: string | null };
  signup: { mode: 'closed' | 'invite' | 'open'; emailDomains: string[]; requireVerifiedEmail: boolean; verificationTtl: number; passwordMinLength: number };
  mfa: 'optional' | 'required';
  tokens: { accessToken: number; idToken: number; refreshToken: number; refreshTokenIdle: number; authorizationCode: number; session: number };
  languages: { default: string; available: string[] };
  keys: { prepublicationSeconds: number; rotationDays: number };
  google: { configured: boolean; hostedDomains: string[] };
  auditRetentionDays: number;
}

export const loadSettings = () => get<ServerSettings>('/settings');

/** A duration in words of the page's language, in the largest unit that divides it: 14 days, 10 minutes, 45 seconds. */
export function formatDuration(seconds: number): string {
  const units = [
    ['day', 86_400],
    ['hour', 3600],
    ['minute', 60],
  ] as const;
  const [unit, size] = units.find(([, s]) => seconds >= s && seconds % s === 0) ?? (['second', 1] as const);
  return new Intl.NumberFormat(currentLocale(), { style: 'unit', unit, unitDisplay: 'long' }).format(seconds / size);
}

const days = (n: number) => new Intl.NumberFormat(currentLocale(), { style: 'unit', unit: 'day', unitDisplay: 'long' }).format(n);
const yesNo = (value: boolean) => (value ? t('settings.yes') : t('settings.no'));
const NotSet = () => <span class="muted">{t('settings.notSet')}</span>;
const orNotSet = (value: string | null, show: (v: string) => ComponentChildren = (v) => <span class="mono">{v}</span>) => (value ? show(value) : <NotSet />);
const list = (values: string[], empty: string) => (values.length ? values.join(', ') : <span class="muted">{empty}</span>);

/** One setting: what it is, its value, and the environment variable that sets it. */
interface Row {
  label: string;
  value: ComponentChildren;
  variable: string;
  note?: string;
}

export function Settings(_props: ScreenProps) {
  const loaded = useLoad(loadSettings, []);
  const s = loaded.data;
  return (
    <Screen title={t('settings.title')}>
      <p class="notice">{t('settings.intro')}</p>
      <Loading loaded={loaded} />
      {s ? (
        <>
          <Group title={t('settings.server')} rows={[{ label: t('settings.issuer'), value: <span class="mono">{s.issuer}</span>, variable: 'ISSUER' }]} />
          <Group title={t('settings.brand')} rows={brandRows(s.brand)} />
          <Group title={t('settings.signup')} rows={signupRows(s.signup)} />
          <Group title={t('settings.signIn')} rows={[{ label: t('settings.mfa'), value: t(MFA_POLICIES[s.mfa]), variable: 'MFA' }]} />
          <Group title={t('settings.tokens')} rows={tokenRows(s.tokens)} />
          <Group title={t('settings.languages')} rows={languageRows(s.languages)} />
          <Group title={t('settings.keysAndAudit')} rows={keyRows(s)} />
          <Group title={t('settings.google')} rows={googleRows(s.google)} />
        </>
      ) : null}
    </Screen>
  );
}

function Group({ title, rows }: { title: string; rows: Row[] }) {
  return (
    <div class="settings-group">
      <h2>{title}</h2>
      <Table caption={title}>
        <thead>
          <tr>
            <th scope="col">{t('settings.setting')}</th>
            <th scope="col">{t('settings.value')}</th>
            <th scope="col">{t('settings.variable')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.variable}>
              <th scope="row">{r.label}</th>
              <td>{r.value}</td>
              <td>
                <code>{r.variable}</code>
                {r.note ? <p class="hint">{r.note}</p> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </Table>
    </div>
  );
}

function Swatch({ colour }: { colour: string }) {
  return (
    <span class="swatch">
      <svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
        <rect width="16" height="16" rx="3" fill={colour} stroke="currentColor" stroke-opacity="0.3" />
      </svg>
      <span class="mono">{colour}</span>
    </span>
  );
}

const link = (url: string) => (
  <a href={url} class="mono" rel="noreferrer" target="_blank">
    {url}
  </a>
);

const brandRows = (b: ServerSettings['brand']): Row[] => [
  { label: t('settings.productName'), value: orNotSet(b.productName, (v) => v), variable: 'PRODUCT_NAME' },
  { label: t('settings.colour'), value: <Swatch colour={b.colour} />, variable: 'BRAND_COLOR' },
  { label: t('settings.logo'), value: orNotSet(b.logoUrl), variable: 'BRAND_LOGO_URL' },
  { label: t('settings.favicon'), value: orNotSet(b.faviconUrl), variable: 'BRAND_FAVICON_URL' },
  { label: t('settings.support'), value: orNotSet(b.supportUrl, link), variable: 'SUPPORT_URL' },
  { label: t('settings.terms'), value: orNotSet(b.termsUrl, link), variable: 'TERMS_URL' },
  { label: t('settings.privacy'), value: orNotSet(b.privacyUrl, link), variable: 'PRIVACY_URL' },
];

const SIGNUP_MODES = { closed: 'settings.signup.closed', invite: 'settings.signup.invite', open: 'settings.signup.open' } as const;

const signupRows = (s: ServerSettings['signup']): Row[] => [
  { label: t('settings.signupMode'), value: t(SIGNUP_MODES[s.mode]), variable: 'SIGNUP' },
  { label: t('settings.emailDomains'), value: list(s.emailDomains, t('settings.anyDomain')), variable: 'SIGNUP_EMAIL_DOMAINS' },
  { label: t('settings.requireVerifiedEmail'), value: yesNo(s.requireVerifiedEmail), variable: 'REQUIRE_VERIFIED_EMAIL' },
  { label: t('settings.verificationTtl'), value: formatDuration(s.verificationTtl), variable: 'EMAIL_VERIFICATION_TTL' },
  { label: t('settings.passwordMinLength'), value: t('settings.characters', { count: s.passwordMinLength }), variable: 'PASSWORD_MIN_LENGTH' },
];

const MFA_POLICIES = { optional: 'settings.mfa.optional', required: 'settings.mfa.required' } as const;

const tokenRows = (l: ServerSettings['tokens']): Row[] => [
  { label: t('settings.accessToken'), value: formatDuration(l.accessToken), variable: 'ACCESS_TOKEN_TTL' },
  { label: t('settings.idToken'), value: formatDuration(l.idToken), variable: 'ID_TOKEN_TTL' },
  { label: t('settings.refreshToken'), value: formatDuration(l.refreshToken), variable: 'REFRESH_TOKEN_TTL' },
  { label: t('settings.refreshTokenIdle'), value: formatDuration(l.refreshTokenIdle), variable: 'REFRESH_TOKEN_IDLE_TTL' },
  { label: t('settings.authorizationCode'), value: formatDuration(l.authorizationCode), variable: 'AUTHORIZATION_CODE_TTL' },
  { label: t('settings.session'), value: formatDuration(l.session), variable: 'SESSION_TTL' },
];

const languageRows = (l: ServerSettings['languages']): Row[] => [
  { label: t('settings.defaultLanguage'), value: `${languageName(l.default)} (${l.default})`, variable: 'DEFAULT_LOCALE' },
  { label: t('settings.availableLanguages'), value: l.available.map((tag) => `${languageName(tag)} (${tag})`).join(', '), variable: 'THEME_DIR', note: t('settings.languagesNote') },
];

const keyRows = (s: ServerSettings): Row[] => [
  { label: t('settings.prepublication'), value: formatDuration(s.keys.prepublicationSeconds), variable: 'KEY_PREPUBLICATION_SECONDS' },
  { label: t('settings.rotationDays'), value: s.keys.rotationDays ? days(s.keys.rotationDays) : t('settings.rotationOnDemand'), variable: 'KEY_ROTATION_DAYS' },
  { label: t('settings.auditRetention'), value: days(s.auditRetentionDays), variable: 'AUDIT_RETENTION_DAYS' },
];

const googleRows = (g: ServerSettings['google']): Row[] => [
  { label: t('settings.googleConfigured'), value: yesNo(g.configured), variable: 'GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET' },
  { label: t('settings.googleDomains'), value: list(g.hostedDomains, t('settings.anyDomain')), variable: 'GOOGLE_HOSTED_DOMAINS' },
];
