import type { JSX } from 'preact';
import { useId, useState } from 'preact/hooks';
import { call, get } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { config } from '../config.ts';
import { formatDate, t } from '../i18n.ts';
import { navigate } from '../router.ts';
import { canWrite, ConfirmButton, CopyButton, ErrorNotice, Field, formValues, Loading, lines, Screen, Table, useAction, useLoad } from '../ui.tsx';
import { loadSettings } from './settings.tsx';

/** An upstream identity provider as the admin API shows it (GET /providers): never its client secret. */
interface Provider {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  scopes: string;
  buttonLabel: string;
  hostedDomains: string[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

type Kind = 'google' | 'oidc';

const GOOGLE_ISSUER = 'https://accounts.google.com';
const DEFAULT_SCOPES = 'openid email profile';

const kindOf = (p: Provider): Kind => (p.issuer === GOOGLE_ISSUER ? 'google' : 'oidc');
const kindName = (kind: Kind) => (kind === 'google' ? t('signInServices.kind.google') : t('signInServices.kind.oidc'));

/** Where the upstream sends people back to us (src/federation/service.ts: callbackUrl). */
const redirectUri = (id: string) => `${config.issuer}/interaction/callback/${id}`;

export function SignInServices({ path }: ScreenProps) {
  const [first] = path;
  if (!first) return <ServiceList />;
  if (first === 'new') return canWrite() ? <CreateService /> : <Forbidden />;
  return <ServiceDetail key={first} id={decodeURIComponent(first)} />;
}

function Forbidden() {
  return (
    <Screen title={t('signInServices.add')}>
      <p class="notice error" role="alert">
        {t('error.forbidden')}
      </p>
    </Screen>
  );
}

function ServiceList() {
  const list = useLoad(() => get<{ items: Provider[] }>('/providers'), []);
  const settings = useLoad(loadSettings, []);
  const actions = canWrite() ? (
    <a class="button" href="/console/sign-in-services/new">
      {t('signInServices.add')}
    </a>
  ) : null;
  return (
    <Screen title={t('signInServices.title')} actions={actions}>
      <p class="muted">{t('signInServices.intro')}</p>
      {settings.data?.google.configured ? <p class="notice">{t('signInServices.googleFromEnvironment')}</p> : null}
      <Loading loaded={list} />
      {list.data ? list.data.items.length ? <ServiceTable providers={list.data.items} /> : <p>{t('signInServices.none')}</p> : null}
    </Screen>
  );
}

function ServiceTable({ providers }: { providers: Provider[] }) {
  return (
    <Table caption={t('signInServices.caption')}>
      <thead>
        <tr>
          <th scope="col">{t('signInServices.name')}</th>
          <th scope="col">{t('signInServices.kind')}</th>
          <th scope="col">{t('signInServices.status')}</th>
          <th scope="col">{t('signInServices.issuer')}</th>
        </tr>
      </thead>
      <tbody>
        {providers.map((p) => (
          <tr key={p.id}>
            <td>
              <a href={`/console/sign-in-services/${encodeURIComponent(p.id)}`}>{p.name}</a> <span class="muted small mono">{p.id}</span>
            </td>
            <td>{kindName(kindOf(p))}</td>
            <td>
              <Status enabled={p.enabled} />
            </td>
            <td class="mono">{p.issuer}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

const Status = ({ enabled }: { enabled: boolean }) => <span class={enabled ? 'badge' : 'badge off'}>{enabled ? t('signInServices.enabled') : t('signInServices.disabled')}</span>;

/** The redirect URI to register at the upstream, to copy: nothing works until it is registered there exactly. */
function RedirectUri({ id, kind }: { id: string; kind: Kind }) {
  const uri = redirectUri(id || '…');
  return (
    <section class="notice redirect-uri" aria-labelledby="redirect-uri-title">
      <h2 id="redirect-uri-title">{t('signInServices.redirectUri')}</h2>
      <p class="hint">{kind === 'google' ? t('signInServices.redirectUri.google') : t('signInServices.redirectUri.oidc')}</p>
      <div class="secret">
        <code>{uri}</code>
        {id ? <CopyButton value={uri} label={t('signInServices.copyRedirectUri')} /> : null}
      </div>
    </section>
  );
}

function CreateService() {
  const [kind, setKind] = useState<Kind>('google');
  const [id, setId] = useState('google');
  const create = useAction(async (body: Record<string, unknown>) => {
    const created = await call<Provider>('POST', '/providers', body);
    navigate(`sign-in-services/${encodeURIComponent(created.id)}`);
  });
  const choose = (next: Kind) => {
    setKind(next);
    // The suggested id follows the kind until the admin types one of their own.
    if (id === '' || id === 'google') setId(next === 'google' ? 'google' : '');
  };
  const submit = (event: JSX.TargetedEvent<HTMLFormElement>) => {
    event.preventDefault();
    const v = formValues(event);
    const common = { id, clientId: v.clientId, clientSecret: v.clientSecret, hostedDomains: lines(v.hostedDomains), enabled: v.enabled === 'on' };
    const own = kind === 'google' ? { preset: 'google' } : { name: v.name, issuer: v.issuer?.trim(), scopes: v.scopes || undefined, buttonLabel: v.buttonLabel || undefined };
    void create.run({ ...common, ...own });
  };
  return (
    <Screen title={t('signInServices.add')}>
      <p>
        <a href="/console/sign-in-services">{t('signInServices.back')}</a>
      </p>
      <form onSubmit={submit} noValidate>
        <fieldset>
          <legend>{t('signInServices.kind')}</legend>
          {(['google', 'oidc'] as const).map((k) => (
            <KindChoice key={k} kind={k} checked={kind === k} onChoose={() => choose(k)} />
          ))}
        </fieldset>
        {kind === 'google' ? (
          <p>
            {t('signInServices.google.steps')}{' '}
            <span class="muted">
              {t('signInServices.issuer')}: <code>{GOOGLE_ISSUER}</code>
            </span>
          </p>
        ) : null}
        <Field label={t('signInServices.id')} hint={t('signInServices.id.hint')}>
          {(p) => <input {...p} type="text" name="id" required value={id} onInput={(e) => setId(e.currentTarget.value.trim())} autoComplete="off" spellcheck={false} />}
        </Field>
        <RedirectUri id={id} kind={kind} />
        {kind === 'oidc' ? (
          <>
            <Field label={t('signInServices.name')} hint={t('signInServices.name.hint')}>
              {(p) => <input {...p} type="text" name="name" required />}
            </Field>
            <Field label={t('signInServices.issuer')} hint={t('signInServices.issuer.hint')}>
              {(p) => <input {...p} type="url" name="issuer" required placeholder="https://sso.example.com" />}
            </Field>
          </>
        ) : null}
        <CredentialFields secretRequired />
        {kind === 'oidc' ? (
          <>
            <Field label={t('signInServices.scopes')} hint={t('signInServices.scopes.hint')}>
              {(p) => <input {...p} type="text" name="scopes" defaultValue={DEFAULT_SCOPES} />}
            </Field>
            <Field label={t('signInServices.buttonLabel')} hint={t('signInServices.buttonLabel.new.hint')}>
              {(p) => <input {...p} type="text" name="buttonLabel" />}
            </Field>
          </>
        ) : null}
        <DomainsField defaultValue="" />
        <EnabledChoice checked />
        <ErrorNotice error={create.error} />
        <div class="actions">
          <button type="submit" disabled={create.busy}>
            {t('signInServices.add')}
          </button>
          <a href="/console/sign-in-services">{t('cancel')}</a>
        </div>
      </form>
    </Screen>
  );
}

/** A kind of service to add, with what it means. */
function KindChoice({ kind, checked, onChoose }: { kind: Kind; checked: boolean; onChoose: () => void }) {
  const id = useId();
  return (
    <div class="choice">
      <input id={id} type="radio" name="kind" value={kind} checked={checked} onChange={onChoose} aria-describedby={`${id}-hint`} />
      <div>
        <label for={id}>{kindName(kind)}</label>
        <p class="hint" id={`${id}-hint`}>
          {kind === 'google' ? t('signInServices.kind.google.hint') : t('signInServices.kind.oidc.hint')}
        </p>
      </div>
    </div>
  );
}

/** The client id and secret the upstream gave us. The secret is write-only: typed here, never shown back. */
function CredentialFields({ clientId, secretRequired }: { clientId?: string; secretRequired?: boolean }) {
  return (
    <>
      <Field label={t('signInServices.clientId')}>{(p) => <input {...p} type="text" name="clientId" required defaultValue={clientId ?? ''} autoComplete="off" spellcheck={false} />}</Field>
      <Field label={t('signInServices.clientSecret')} hint={secretRequired ? t('signInServices.clientSecret.hint') : t('signInServices.clientSecret.keep')}>
        {(p) => <input {...p} type="password" name="clientSecret" required={secretRequired} autoComplete="new-password" spellcheck={false} />}
      </Field>
    </>
  );
}

function DomainsField({ defaultValue }: { defaultValue: string }) {
  return (
    <Field label={t('signInServices.domains')} hint={t('signInServices.domains.hint')}>
      {(p) => <textarea {...p} name="hostedDomains" rows={2} defaultValue={defaultValue} spellcheck={false} />}
    </Field>
  );
}

function EnabledChoice({ checked }: { checked: boolean }) {
  return (
    <label class="choice">
      <input type="checkbox" name="enabled" defaultChecked={checked} />
      <span>{t('signInServices.enabledChoice')}</span>
    </label>
  );
}

function ServiceDetail({ id }: { id: string }) {
  const loaded = useLoad(() => get<Provider>(`/providers/${encodeURIComponent(id)}`), [id]);
  const p = loaded.data;
  const actions =
    p && canWrite() ? (
      <ConfirmButton
        danger
        label={t('signInServices.delete')}
        question={t('signInServices.delete.question', { name: p.name })}
        onConfirm={async () => {
          await call('DELETE', `/providers/${encodeURIComponent(p.id)}`);
          navigate('sign-in-services');
        }}
      />
    ) : null;
  return (
    <Screen title={p?.name ?? t('signInServices.title')} actions={actions}>
      <p>
        <a href="/console/sign-in-services">{t('signInServices.back')}</a>
      </p>
      <Loading loaded={loaded} />
      {p ? (
        <>
          <RedirectUri id={p.id} kind={kindOf(p)} />
          <dl class="facts">
            <dt>{t('signInServices.id')}</dt>
            <dd class="mono">{p.id}</dd>
            <dt>{t('signInServices.kind')}</dt>
            <dd>{kindName(kindOf(p))}</dd>
            <dt>{t('signInServices.status')}</dt>
            <dd>
              <Status enabled={p.enabled} />
            </dd>
            <dt>{t('signInServices.issuer')}</dt>
            <dd class="mono">{p.issuer}</dd>
            <dt>{t('signInServices.clientId')}</dt>
            <dd class="mono">{p.clientId}</dd>
            <dt>{t('signInServices.clientSecret')}</dt>
            <dd class="muted">{t('signInServices.clientSecret.hidden')}</dd>
            <dt>{t('signInServices.scopes')}</dt>
            <dd class="mono">{p.scopes}</dd>
            <dt>{t('signInServices.buttonLabel')}</dt>
            <dd>{p.buttonLabel}</dd>
            <dt>{t('signInServices.domains')}</dt>
            <dd>{p.hostedDomains.length ? p.hostedDomains.join(', ') : t('signInServices.domains.any')}</dd>
            <dt>{t('signInServices.created')}</dt>
            <dd>{formatDate(p.createdAt)}</dd>
            <dt>{t('signInServices.updated')}</dt>
            <dd>{formatDate(p.updatedAt)}</dd>
          </dl>
          {canWrite() ? <EditService provider={p} onSaved={loaded.reload} /> : null}
        </>
      ) : null}
    </Screen>
  );
}

function EditService({ provider: p, onSaved }: { provider: Provider; onSaved: () => void }) {
  const [saved, setSaved] = useState(false);
  const save = useAction(async (body: Record<string, unknown>) => {
    await call('PATCH', `/providers/${encodeURIComponent(p.id)}`, body);
    setSaved(true);
    onSaved();
  });
  const submit = (event: JSX.TargetedEvent<HTMLFormElement>) => {
    event.preventDefault();
    setSaved(false);
    const v = formValues(event);
    void save.run({
      name: v.name,
      issuer: v.issuer?.trim(),
      clientId: v.clientId,
      scopes: v.scopes,
      buttonLabel: v.buttonLabel,
      hostedDomains: lines(v.hostedDomains),
      enabled: v.enabled === 'on',
      ...(v.clientSecret ? { clientSecret: v.clientSecret } : {}),
    });
  };
  return (
    <>
      <h2>{t('signInServices.edit')}</h2>
      {/* Keyed by the last change, so that the fields show what was saved (and the secret field empties). */}
      <form key={p.updatedAt} onSubmit={submit} noValidate>
        <Field label={t('signInServices.name')} hint={t('signInServices.name.hint')}>
          {(f) => <input {...f} type="text" name="name" required defaultValue={p.name} />}
        </Field>
        <Field label={t('signInServices.issuer')} hint={t('signInServices.issuer.hint')}>
          {(f) => <input {...f} type="url" name="issuer" required defaultValue={p.issuer} />}
        </Field>
        <CredentialFields clientId={p.clientId} />
        <Field label={t('signInServices.scopes')} hint={t('signInServices.scopes.hint')}>
          {(f) => <input {...f} type="text" name="scopes" required defaultValue={p.scopes} />}
        </Field>
        <Field label={t('signInServices.buttonLabel')}>{(f) => <input {...f} type="text" name="buttonLabel" required defaultValue={p.buttonLabel} />}</Field>
        <DomainsField defaultValue={p.hostedDomains.join('\n')} />
        <EnabledChoice checked={p.enabled} />
        <ErrorNotice error={save.error} />
        <div class="actions">
          <button type="submit" disabled={save.busy}>
            {t('save')}
          </button>
          <span role="status">{saved ? t('saved') : ''}</span>
        </div>
      </form>
    </>
  );
}
