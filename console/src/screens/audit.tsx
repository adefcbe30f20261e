import type { JSX } from 'preact';
import { get, type Page, query } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { formatDate, t } from '../i18n.ts';
import { currentQuery, navigate } from '../router.ts';
import { Field, formValues, Loading, Pager, Screen, Table, useLoad } from '../ui.tsx';

/** An audit event as the admin API shows it (GET /audit). */
interface AuditEvent {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  ip: string | null;
  details: Record<string, unknown> | null;
}

const FILTERS = ['action', 'actor', 'target', 'since', 'until'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;
const PAGE = 25;

/** Suggestions for the action filter (any action can be typed). */
const COMMON_ACTIONS = [
  'login.succeeded',
  'login.failed',
  'login.throttled',
  'client.created',
  'client.updated',
  'client.deleted',
  'client.disabled',
  'client.role_added',
  'client.role_removed',
  'client.secret_rotated',
  'user.created',
  'user.updated',
  'user.disabled',
  'user.deleted',
  'user.role_added',
  'user.role_removed',
  'user.password_set',
  'mfa.reset',
  'role.created',
  'role.updated',
  'role.deleted',
  'resource.created',
  'resource.updated',
  'resource.deleted',
  'identity_provider.created',
  'identity_provider.updated',
  'identity_provider.deleted',
  'keys.rotated',
  'grant.revoked',
  'session.revoked',
];

/** Where a `kind:id` actor, or the target of an action on a kind of thing, is shown in the console. */
const SCREENS: Record<string, string> = { user: 'users', client: 'applications', identity_provider: 'sign-in-services' };

const screenLink = (kind: string, id: string) => {
  const screen = SCREENS[kind];
  return screen && id ? `/console/${screen}/${encodeURIComponent(id)}` : undefined;
};

/** A `datetime-local` value (the browser's time zone) for an ISO instant, and back. */
function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}
const fromLocalInput = (value: string | undefined) => (value ? new Date(value).toISOString() : '');

/** The filters and the page live in the address, so that a filtered view can be bookmarked and shared. */
export function AuditTrail(_props: ScreenProps) {
  const params = currentQuery();
  const filters = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ''])) as Filters;
  const offset = Number(params.get('offset')) || 0;
  const search = query({ ...filters, limit: PAGE, offset: offset || undefined });
  const events = useLoad(() => get<Page<AuditEvent>>(`/audit${search}`), [search]);
  const show = (next: Filters, at = 0) => navigate(`audit${query({ ...next, offset: at || undefined })}`);

  return (
    <Screen title={t('audit.title')}>
      <p class="muted">{t('audit.intro')}</p>
      <FilterForm key={JSON.stringify(filters)} filters={filters} onApply={show} />
      <Loading loaded={events} />
      {events.data ? (
        <>
          <p class="muted" role="status">
            {t('audit.count', { count: events.data.total })}
          </p>
          {events.data.items.length ? (
            <div class="wide">
              <EventTable events={events.data.items} />
            </div>
          ) : null}
          <Pager page={events.data} onOffset={(at) => show(filters, at)} />
        </>
      ) : null}
    </Screen>
  );
}

function FilterForm({ filters, onApply }: { filters: Filters; onApply: (f: Filters) => void }) {
  const submit = (event: JSX.TargetedEvent<HTMLFormElement>) => {
    event.preventDefault();
    const v = formValues(event);
    onApply({ action: v.action?.trim() ?? '', actor: v.actor?.trim() ?? '', target: v.target?.trim() ?? '', since: fromLocalInput(v.since), until: fromLocalInput(v.until) });
  };
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return (
    <form class="filters" onSubmit={submit} aria-label={t('audit.filters')}>
      <Field label={t('audit.action')}>
        {(p) => <input {...p} type="text" name="action" list="audit-actions" defaultValue={filters.action} autoComplete="off" spellcheck={false} />}
      </Field>
      <datalist id="audit-actions">
        {COMMON_ACTIONS.map((a) => (
          <option key={a} value={a} />
        ))}
      </datalist>
      <Field label={t('audit.actor')}>
        {(p) => <input {...p} type="text" name="actor" defaultValue={filters.actor} autoComplete="off" spellcheck={false} />}
      </Field>
      <Field label={t('audit.target')}>
        {(p) => <input {...p} type="text" name="target" defaultValue={filters.target} autoComplete="off" spellcheck={false} />}
      </Field>
      <Field label={t('audit.since')}>
        {(p) => <input {...p} type="datetime-local" name="since" defaultValue={toLocalInput(filters.since)} />}
      </Field>
      <Field label={t('audit.until')}>
        {(p) => <input {...p} type="datetime-local" name="until" defaultValue={toLocalInput(filters.until)} />}
      </Field>
      <p class="hint filters-hint">{t('audit.hint', { zone })}</p>
      <div class="actions">
        <button type="submit">{t('audit.apply')}</button>
        <button type="button" class="secondary" onClick={() => navigate('audit')}>
          {t('audit.clear')}
        </button>
      </div>
    </form>
  );
}

function EventTable({ events }: { events: AuditEvent[] }) {
  return (
    <Table caption={t('audit.caption')}>
      <thead>
        <tr>
          <th scope="col">{t('audit.time')}</th>
          <th scope="col">{t('audit.action')}</th>
          <th scope="col">{t('audit.actor')}</th>
          <th scope="col">{t('audit.target')}</th>
          <th scope="col">{t('audit.ip')}</th>
          <th scope="col">{t('audit.details')}</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr key={e.id}>
            <td class="nowrap">
              <time dateTime={e.at}>{formatDate(e.at)}</time>
            </td>
            <td class="nowrap">
              <code>{e.action}</code>
            </td>
            <td>
              <Actor actor={e.actor} />
            </td>
            <td>{e.target ? <Target action={e.action} target={e.target} /> : '—'}</td>
            <td class="mono">{e.ip ?? '—'}</td>
            <td>{e.details ? <code class="details">{JSON.stringify(e.details)}</code> : '—'}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

/** `user:<id>` and `client:<id>` link to the person and the application; others (cli:…, federation:…) are shown as they are. */
function Actor({ actor }: { actor: string }) {
  const at = actor.indexOf(':');
  const href = at > 0 ? screenLink(actor.slice(0, at), actor.slice(at + 1)) : undefined;
  return href ? (
    <a href={href} class="mono">
      {actor}
    </a>
  ) : (
    <span class="mono">{actor}</span>
  );
}

/** The target of a change to a user, an application or a sign-in service links to it (an invitation's target is an address, not a user). */
function Target({ action, target }: { action: string; target: string }) {
  const href = target.includes('@') ? undefined : screenLink(action.slice(0, action.indexOf('.')), target);
  return href ? (
    <a href={href} class="mono">
      {target}
    </a>
  ) : (
    <span class="mono">{target}</span>
  );
}
