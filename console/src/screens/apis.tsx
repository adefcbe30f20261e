import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { call, get, type Page, query } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { config } from '../config.ts';
import { currentLocale, formatDate, formatNumber, t } from '../i18n.ts';
import { currentQuery, navigate } from '../router.ts';
import { canWrite, ConfirmButton, ErrorNotice, Field, Loading, Pager, Screen, Table, useAction, useLoad } from '../ui.tsx';

/** An API (a resource server) as the admin API shows it (GET /resources). */
export interface Api {
  id: string;
  identifier: string;
  name: string | null;
  scopes: string[];
  scopeDescriptions: Record<string, string>;
  accessTokenTtl: number;
  signingAlg: string;
  enforceRoles: boolean;
  rolesClaim: boolean;
  createdAt: string;
}

/** What POST /resources and PATCH /resources/:id accept (src/resources/service.ts). */
const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
const MIN_TTL = 30;
const MAX_TTL = 24 * 3600;
const PAGE = 50;

/** The admin API itself is registered like any other API, but nobody may change it. */
const isAdminApi = (api: Api) => api.identifier === config.adminApi;

/** Every registered API an application may be allowed to use (all but the admin API), for the applications screen. */
export async function loadApiCatalogue(): Promise<Api[]> {
  const page = await get<Page<Api>>('/resources?limit=200');
  return page.items.filter((a) => !isAdminApi(a));
}

/** A lifetime in words of the page's language: 10 minutes, 1 hour, 45 seconds. */
function formatSeconds(seconds: number): string {
  const [unit, n] = seconds % 3600 === 0 ? (['hour', seconds / 3600] as const) : seconds % 60 === 0 ? (['minute', seconds / 60] as const) : (['second', seconds] as const);
  return new Intl.NumberFormat(currentLocale(), { style: 'unit', unit, unitDisplay: 'long' }).format(n);
}

export function Apis({ path }: ScreenProps) {
  const [first] = path;
  if (!first) return <ApiList />;
  if (first === 'new') return canWrite() ? <CreateApi /> : <Forbidden />;
  return <ApiDetail key={first} id={decodeURIComponent(first)} />;
}

function Forbidden() {
  return (
    <Screen title={t('apis.create')}>
      <p class="notice error" role="alert">
        {t('error.forbidden')}
      </p>
    </Screen>
  );
}

function ApiList() {
  const offset = Number(currentQuery().get('offset')) || 0;
  const list = useLoad(() => get<Page<Api>>(`/resources${query({ limit: PAGE, offset })}`), [offset]);
  const actions = canWrite() ? (
    <a class="button" href="/console/apis/new">
      {t('apis.create')}
    </a>
  ) : null;
  return (
    <Screen title={t('apis.title')} actions={actions}>
      <p class="muted">{t('apis.intro')}</p>
      <Loading loaded={list} />
      {list.data ? (
        list.data.items.length ? (
          <>
            <ApiTable apis={list.data.items} />
            <Pager page={list.data} onOffset={(o) => navigate(`apis${query({ offset: o || undefined })}`)} />
          </>
        ) : (
          <p>{t('apis.none')}</p>
        )
      ) : null}
    </Screen>
  );
}

function ApiTable({ apis }: { apis: Api[] }) {
  return (
    <Table caption={t('apis.listCaption')}>
      <thead>
        <tr>
          <th scope="col">{t('apis.identifier')}</th>
          <th scope="col">{t('apis.name')}</th>
          <th scope="col">{t('apis.scopeCount')}</th>
          <th scope="col">{t('apis.tokenLifetime')}</th>
          <th scope="col">{t('apis.signingAlg')}</th>
          <th scope="col">{t('apis.roles')}</th>
        </tr>
      </thead>
      <tbody>
        {apis.map((api) => (
          <tr key={api.id}>
            <td>
              <a href={`/console/apis/${encodeURIComponent(api.id)}`} class="mono">
                {api.identifier}
              </a>{' '}
              {isAdminApi(api) ? <span class="badge">{t('apis.builtIn')}</span> : null}
            </td>
            <td>{api.name ?? '—'}</td>
            <td>{formatNumber(api.scopes.length)}</td>
            <td>{formatSeconds(api.accessTokenTtl)}</td>
            <td>{api.signingAlg}</td>
            <td>{api.enforceRoles ? t('apis.enforced') : t('apis.notEnforced')}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

function CreateApi() {
  const save = useAction(async (body: ApiBody) => {
    const created = await call<Api>('POST', '/resources', body);
    navigate(`apis/${encodeURIComponent(created.id)}`);
  });
  return (
    <Screen title={t('apis.create')}>
      <p>
        <a href="/console/apis">{t('apis.back')}</a>
      </p>
      <ApiForm submitLabel={t('apis.create')} action={save} />
    </Screen>
  );
}

function ApiDetail({ id }: { id: string }) {
  const api = useLoad(() => get<Api>(`/resources/${encodeURIComponent(id)}`), [id]);
  const [saved, setSaved] = useState(false);
  const save = useAction(async (body: ApiBody) => {
    setSaved(false);
    await call('PATCH', `/resources/${encodeURIComponent(id)}`, body);
    api.reload();
    setSaved(true);
  });
  const data = api.data;
  const editable = canWrite() && data !== undefined && !isAdminApi(data);
  return (
    <Screen title={data ? (data.name ?? data.identifier) : t('apis.title')}>
      <p>
        <a href="/console/apis">{t('apis.back')}</a>
      </p>
      <Loading loaded={api} />
      {data ? (
        <>
          {isAdminApi(data) ? <p class="notice">{t('apis.adminApiNotice')}</p> : null}
          <ApiFacts api={data} />
          {editable ? (
            <>
              <h2>{t('apis.edit')}</h2>
              <ApiForm key={data.id} api={data} submitLabel={t('save')} action={save} />
              <p role="status">{saved ? t('saved') : ''}</p>
              <h2>{t('apis.delete')}</h2>
              <p>{t('apis.deleteHint')}</p>
              <ConfirmButton
                danger
                label={t('apis.delete')}
                question={t('apis.deleteQuestion', { identifier: data.identifier })}
                onConfirm={async () => {
                  await call('DELETE', `/resources/${encodeURIComponent(id)}`);
                  navigate('apis');
                }}
              />
            </>
          ) : null}
        </>
      ) : null}
    </Screen>
  );
}

function ApiFacts({ api }: { api: Api }) {
  return (
    <>
      <dl class="facts">
        <dt>{t('apis.identifier')}</dt>
        <dd class="mono">{api.identifier}</dd>
        <dt>{t('apis.name')}</dt>
        <dd>{api.name ?? '—'}</dd>
        <dt>{t('apis.tokenLifetime')}</dt>
        <dd>{formatSeconds(api.accessTokenTtl)}</dd>
        <dt>{t('apis.signingAlg')}</dt>
        <dd>{api.signingAlg}</dd>
        <dt>{t('apis.roles')}</dt>
        <dd>{api.enforceRoles ? t('apis.enforced') : t('apis.notEnforced')}</dd>
        <dt>{t('apis.rolesClaim')}</dt>
        <dd>{api.rolesClaim ? t('apis.yes') : t('apis.no')}</dd>
        <dt>{t('apis.created')}</dt>
        <dd>{formatDate(api.createdAt)}</dd>
      </dl>
      <h2>{t('apis.scopes')}</h2>
      {api.scopes.length ? (
        <Table caption={t('apis.scopes')}>
          <thead>
            <tr>
              <th scope="col">{t('apis.scopeName')}</th>
              <th scope="col">{t('apis.scopeDescription')}</th>
            </tr>
          </thead>
          <tbody>
            {api.scopes.map((s) => (
              <tr key={s}>
                <td class="mono">{s}</td>
                <td>{api.scopeDescriptions[s] ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </Table>
      ) : (
        <p>{t('apis.noScopes')}</p>
      )}
    </>
  );
}

/** What the form sends: POST /resources takes all of it, PATCH the same less the identifier. */
interface ApiBody {
  identifier?: string;
  name?: string | null;
  scopes: { name: string; description?: string }[];
  accessTokenTtl?: number;
  signingAlg: string;
  enforceRoles: boolean;
  rolesClaim: boolean;
}

interface ScopeRow {
  key: number;
  name: string;
  description: string;
}

let rowKeys = 0;
const row = (name = '', description = ''): ScopeRow => ({ key: ++rowKeys, name, description });

/** Create (with the identifier) or edit (without: it never changes) an API. */
function ApiForm({ api, submitLabel, action }: { api?: Api; submitLabel: string; action: { run: (body: ApiBody) => Promise<boolean>; error: unknown; busy: boolean } }) {
  const [rows, setRows] = useState<ScopeRow[]>(() => (api ? api.scopes.map((s) => row(s, api.scopeDescriptions[s] ?? '')) : [row()]));
  const submit = (event: JSX.TargetedSubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? '').trim();
    const ttl = text('accessTokenTtl');
    void action.run({
      ...(api ? { name: text('name') || null } : { identifier: text('identifier'), ...(text('name') ? { name: text('name') } : {}) }),
      scopes: rows.filter((r) => r.name.trim()).map((r) => ({ name: r.name.trim(), ...(r.description.trim() ? { description: r.description.trim() } : {}) })),
      ...(ttl ? { accessTokenTtl: Number(ttl) } : {}),
      signingAlg: text('signingAlg'),
      enforceRoles: form.has('enforceRoles'),
      rolesClaim: form.has('rolesClaim'),
    });
  };
  return (
    <form onSubmit={submit}>
      <Field label={t('apis.name')} hint={t('apis.nameHint')}>
        {(p) => <input {...p} type="text" name="name" maxLength={200} defaultValue={api?.name ?? ''} />}
      </Field>
      {api ? null : (
        <Field label={t('apis.identifier')} hint={t('apis.identifierHint')}>
          {(p) => <input {...p} type="text" name="identifier" required maxLength={2048} placeholder="https://api.example.com" autoComplete="off" spellcheck={false} />}
        </Field>
      )}
      <ScopeRows rows={rows} onChange={setRows} />
      <Field label={t('apis.tokenLifetimeSeconds')} hint={api ? t('apis.ttlHint') : t('apis.ttlHintCreate')}>
        {(p) => <input {...p} class="short" type="number" name="accessTokenTtl" min={MIN_TTL} max={MAX_TTL} step={1} required={Boolean(api)} defaultValue={api ? String(api.accessTokenTtl) : ''} />}
      </Field>
      <Field label={t('apis.signingAlg')} hint={t('apis.signingAlgHint')}>
        {(p) => (
          <select {...p} name="signingAlg" defaultValue={api?.signingAlg ?? 'RS256'}>
            {SIGNING_ALGS.map((alg) => (
              <option key={alg} value={alg}>
                {alg}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Checkbox name="enforceRoles" label={t('apis.enforceRoles')} hint={t('apis.enforceRolesHint')} checked={api?.enforceRoles ?? false} />
      <Checkbox name="rolesClaim" label={t('apis.rolesClaimLabel')} hint={t('apis.rolesClaimHint')} checked={api?.rolesClaim ?? false} />
      <ErrorNotice error={action.error} />
      <div class="actions">
        <button type="submit" disabled={action.busy}>
          {submitLabel}
        </button>
      </div>
    </form>
  );
}

function Checkbox({ name, label, hint, checked }: { name: string; label: string; hint: string; checked: boolean }) {
  const id = `api-${name}`;
  return (
    <div class="field">
      <label class="choice" for={id}>
        <input type="checkbox" id={id} name={name} defaultChecked={checked} aria-describedby={`${id}-hint`} />
        <span>{label}</span>
      </label>
      <p class="hint checkbox-hint" id={`${id}-hint`}>
        {hint}
      </p>
    </div>
  );
}

/** The API's scopes as rows of a name and what it lets an app do, added and removed in place. */
function ScopeRows({ rows, onChange }: { rows: ScopeRow[]; onChange: (rows: ScopeRow[]) => void }) {
  const set = (key: number, change: Partial<ScopeRow>) => onChange(rows.map((r) => (r.key === key ? { ...r, ...change } : r)));
  return (
    <fieldset>
      <legend>{t('apis.scopes')}</legend>
      <p class="hint">{t('apis.scopesHint')}</p>
      <ol class="scope-rows">
        {rows.map((r, i) => (
          <li key={r.key} class="scope-row">
            <Field label={t('apis.scopeName')}>
              {(p) => <input {...p} type="text" value={r.name} maxLength={128} placeholder={i === 0 ? 'read' : ''} autoComplete="off" spellcheck={false} onInput={(e) => set(r.key, { name: e.currentTarget.value })} />}
            </Field>
            <Field label={t('apis.scopeDescription')}>
              {(p) => <input {...p} type="text" value={r.description} maxLength={200} onInput={(e) => set(r.key, { description: e.currentTarget.value })} />}
            </Field>
            <button type="button" class="secondary small" onClick={() => onChange(rows.filter((x) => x.key !== r.key))}>
              {t('apis.removeScope')}
              <span class="visually-hidden"> {r.name || formatNumber(i + 1)}</span>
            </button>
          </li>
        ))}
      </ol>
      <button type="button" class="secondary small" onClick={() => onChange([...rows, row()])}>
        {t('apis.addScope')}
      </button>
    </fieldset>
  );
}
