import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { call, get, type Page, query } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { config } from '../config.ts';
import { formatDate, t } from '../i18n.ts';
import { currentQuery, navigate } from '../router.ts';
import { canWrite, ConfirmButton, CopyButton, ErrorNotice, Field, Loading, lines, Pager, Screen, Table, useAction, useLoad } from '../ui.tsx';
import { RoleAssignments } from './roles.tsx';
import { type Api, loadApiCatalogue } from './apis.tsx';

/** A client as the admin API shows it (GET /clients, src/http/admin/schemas.ts). */
interface Client {
  clientId: string;
  name: string;
  applicationType: 'web' | 'native';
  public: boolean;
  grantTypes: string[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  allowedOrigins: string[];
  apis: Record<string, string[]>;
  admin: boolean;
  /** People signing in to it must use a second factor. */
  requireMfa: boolean;
  /** How it authenticates at the token endpoint: none (public), client_secret_basic/_post, or private_key_jwt. */
  tokenEndpointAuthMethod: string;
  /** Its public keys (private_key_jwt), or where it publishes them; null otherwise. */
  jwks: { keys: Record<string, unknown>[] } | null;
  jwksUri: string | null;
  /** false: a legacy confidential app that may skip PKCE. */
  requirePkce: boolean;
  requirePushedAuthorizationRequests: boolean;
  dpopBoundAccessTokens: boolean;
  requireSignedRequestObject: boolean;
  /** Seconds (0–60) in which a rotated-out refresh token gets the same successor again; 0: strict rotation. */
  refreshTokenReuseInterval: number;
  backchannelLogoutUri: string | null;
  backchannelLogoutSessionRequired: boolean;
  disabled: boolean;
  previousSecretExpiresAt: string | null;
  createdAt: string;
}

interface Created {
  client: Client;
  /** Only in the answer that created (or rotated) it; absent for public clients. */
  clientSecret?: string;
}

/** API identifier → the scopes of that API the application may receive. */
type ApiScopes = Record<string, string[]>;

/** The account page's and the console's own clients: the API refuses any change to them. */
const BUILT_IN = new Set(['idp-account', 'idp-console']);
const PAGE = 50;
/** The longest overlap POST /clients/:id/rotate-secret accepts (30 days), in hours. */
const MAX_OVERLAP_HOURS = 30 * 24;

type Preset = 'spa' | 'web' | 'native' | 'm2m';
const PRESETS: readonly Preset[] = ['spa', 'web', 'native', 'm2m'];

/** What each kind of application is registered as (POST /clients). */
const SHAPES: Record<Preset, { public: boolean; grantTypes: string[]; applicationType?: 'native'; scope?: string; signsPeopleIn: boolean }> = {
  spa: { public: true, grantTypes: ['authorization_code', 'refresh_token'], signsPeopleIn: true },
  web: { public: false, grantTypes: ['authorization_code', 'refresh_token'], signsPeopleIn: true },
  native: { public: true, grantTypes: ['authorization_code', 'refresh_token'], applicationType: 'native', signsPeopleIn: true },
  // A machine signs nobody in: no OpenID Connect scopes, only APIs.
  m2m: { public: false, grantTypes: ['client_credentials'], scope: '', signsPeopleIn: false },
};

/** The hint under the redirect URIs: an example of what this kind of application registers. */
const redirectHint = (preset: Preset) =>
  preset === 'native' ? t('applications.redirectUrisHintNative') : t('applications.redirectUrisHint', { example: preset === 'spa' ? 'https://spa.example.com/callback' : 'https://app.example.com/callback' });

/** Which kind an application registered earlier is, for its quick start. */
function presetOf(c: Client): Preset {
  if (!c.grantTypes.includes('authorization_code')) return 'm2m';
  if (c.applicationType === 'native') return 'native';
  return c.public ? 'spa' : 'web';
}

const clientPath = (id: string) => `/clients/${encodeURIComponent(id)}`;
const sameApis = (a: ApiScopes, b: ApiScopes) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

export function Applications({ path }: ScreenProps) {
  const [first] = path;
  if (!first) return <ApplicationList />;
  if (first === 'new')
    return canWrite() ? (
      <Wizard />
    ) : (
      <Screen title={t('applications.create')}>
        <p class="notice error" role="alert">
          {t('error.forbidden')}
        </p>
      </Screen>
    );
  return <ApplicationDetail key={first} clientId={decodeURIComponent(first)} />;
}

/* ---------- The list ---------- */

function ApplicationList() {
  const params = currentQuery();
  const name = params.get('name') ?? '';
  const offset = Number(params.get('offset')) || 0;
  const list = useLoad(() => get<Page<Client>>(`/clients${query({ name, limit: PAGE, offset })}`), [name, offset]);
  const search = (event: JSX.TargetedSubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    navigate(`applications${query({ name: String(new FormData(event.currentTarget).get('name') ?? '').trim() })}`);
  };
  const actions = canWrite() ? (
    <a class="button" href="/console/applications/new">
      {t('applications.create')}
    </a>
  ) : null;
  return (
    <Screen title={t('applications.title')} actions={actions}>
      <form key={name} class="filters" onSubmit={search}>
        <Field label={t('applications.search')}>{(p) => <input {...p} type="search" name="name" defaultValue={name} maxLength={200} />}</Field>
        <button type="submit" class="secondary">
          {t('applications.searchButton')}
        </button>
      </form>
      <Loading loaded={list} />
      {list.data ? (
        list.data.items.length ? (
          <>
            <ClientTable clients={list.data.items} />
            <Pager page={list.data} onOffset={(o) => navigate(`applications${query({ name, offset: o || undefined })}`)} />
          </>
        ) : (
          <p>{name ? t('applications.noMatch') : t('applications.none')}</p>
        )
      ) : null}
    </Screen>
  );
}

function ClientTable({ clients }: { clients: Client[] }) {
  return (
    <Table caption={t('applications.listCaption')}>
      <thead>
        <tr>
          <th scope="col">{t('applications.name')}</th>
          <th scope="col">{t('applications.clientId')}</th>
          <th scope="col">{t('applications.type')}</th>
          <th scope="col">{t('applications.status')}</th>
          <th scope="col">{t('applications.created')}</th>
        </tr>
      </thead>
      <tbody>
        {clients.map((c) => (
          <tr key={c.clientId}>
            <td>
              <a href={`/console/applications/${encodeURIComponent(c.clientId)}`}>{c.name}</a> <Tags client={c} />
            </td>
            <td class="mono">{c.clientId}</td>
            <td>{c.public ? t('applications.public') : t('applications.confidential')}</td>
            <td>
              <StatusBadge client={c} />
            </td>
            <td>{formatDate(c.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

function Tags({ client }: { client: Client }) {
  if (BUILT_IN.has(client.clientId)) return <span class="badge">{t('applications.builtIn')}</span>;
  if (client.admin) return <span class="badge">{t('applications.adminClient')}</span>;
  return null;
}

function StatusBadge({ client }: { client: Client }) {
  return client.disabled ? <span class="badge off">{t('applications.disabled')}</span> : <span class="badge">{t('applications.enabled')}</span>;
}

/* ---------- Creating: kind, details, the credentials and a quick start ---------- */

interface Draft {
  name: string;
  redirectUris: string;
  postLogoutRedirectUris: string;
  allowedOrigins: string;
  apis: ApiScopes;
}

const EMPTY_DRAFT: Draft = { name: '', redirectUris: '', postLogoutRedirectUris: '', allowedOrigins: '', apis: {} };

function Wizard() {
  const [preset, setPreset] = useState<Preset>('web');
  const [step, setStep] = useState<1 | 2 | 3>(1);
  const [draft, setDraft] = useState<Draft>(EMPTY_DRAFT);
  const [created, setCreated] = useState<Created>();
  const create = useAction(async () => {
    const shape = SHAPES[preset];
    const result = await call<Created>('POST', '/clients', {
      name: draft.name.trim(),
      public: shape.public,
      grantTypes: shape.grantTypes,
      ...(shape.applicationType ? { applicationType: shape.applicationType } : {}),
      ...(shape.scope === undefined ? {} : { scope: shape.scope }),
      ...(shape.signsPeopleIn ? { redirectUris: lines(draft.redirectUris), postLogoutRedirectUris: lines(draft.postLogoutRedirectUris) } : {}),
      ...(preset === 'spa' ? { allowedOrigins: lines(draft.allowedOrigins) } : {}),
      apis: draft.apis,
    });
    setCreated(result);
    setStep(3);
  });
  return (
    <Screen title={t('applications.create')}>
      <Steps step={step} />
      {step === 1 ? (
        <ChoosePreset
          preset={preset}
          onNext={(p) => {
            setPreset(p);
            setStep(2);
          }}
        />
      ) : null}
      {step === 2 ? <Details preset={preset} draft={draft} onChange={setDraft} action={create} onBack={() => setStep(1)} /> : null}
      {step === 3 && created ? <Credentials preset={preset} created={created} /> : null}
    </Screen>
  );
}

function Steps({ step }: { step: 1 | 2 | 3 }) {
  const names = [t('applications.step1'), t('applications.step2'), t('applications.step3')];
  return (
    <ol class="steps" aria-label={t('applications.steps')}>
      {names.map((name, i) => (
        <li key={name} aria-current={i + 1 === step ? 'step' : undefined}>
          {name}
        </li>
      ))}
    </ol>
  );
}

/** A step's heading, focused when the step opens so that screen readers announce it. */
function StepHeading({ children }: { children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <h2 tabIndex={-1} ref={heading}>
      {children}
    </h2>
  );
}

const PRESET_NAMES: Record<Preset, () => string> = {
  spa: () => t('applications.preset.spa'),
  web: () => t('applications.preset.web'),
  native: () => t('applications.preset.native'),
  m2m: () => t('applications.preset.m2m'),
};
const PRESET_HINTS: Record<Preset, () => string> = {
  spa: () => t('applications.preset.spaHint'),
  web: () => t('applications.preset.webHint'),
  native: () => t('applications.preset.nativeHint'),
  m2m: () => t('applications.preset.m2mHint'),
};

function ChoosePreset({ preset, onNext }: { preset: Preset; onNext: (p: Preset) => void }) {
  const [chosen, setChosen] = useState(preset);
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        onNext(chosen);
      }}
    >
      <StepHeading>{t('applications.step1')}</StepHeading>
      <fieldset>
        <legend>{t('applications.kindQuestion')}</legend>
        {PRESETS.map((p) => (
          <label key={p} class="choice preset">
            <input type="radio" name="preset" value={p} checked={chosen === p} onChange={() => setChosen(p)} />
            <span>
              <strong>{PRESET_NAMES[p]()}</strong>
              <span class="hint">{PRESET_HINTS[p]()}</span>
            </span>
          </label>
        ))}
      </fieldset>
      <div class="actions">
        <a class="button secondary" href="/console/applications">
          {t('cancel')}
        </a>
        <button type="submit">{t('applications.next')}</button>
      </div>
    </form>
  );
}

type Action = { run: () => Promise<boolean>; error: unknown; busy: boolean };

function Details({ preset, draft, onChange, action, onBack }: { preset: Preset; draft: Draft; onChange: (d: Draft) => void; action: Action; onBack: () => void }) {
  const set = (change: Partial<Draft>) => onChange({ ...draft, ...change });
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void action.run();
      }}
    >
      <StepHeading>{t('applications.step2')}</StepHeading>
      <p class="muted">{t('applications.detailsFor', { kind: PRESET_NAMES[preset]() })}</p>
      <Field label={t('applications.name')} hint={t('applications.nameHint')}>
        {(p) => <input {...p} type="text" required maxLength={200} value={draft.name} onInput={(e) => set({ name: e.currentTarget.value })} />}
      </Field>
      {SHAPES[preset].signsPeopleIn ? (
        <UriFields preset={preset} origins={preset === 'spa'} values={draft} onInput={set} />
      ) : (
        <p class="notice">{t('applications.m2mNoRedirects')}</p>
      )}
      <ApiChoice value={draft.apis} onChange={(apis) => set({ apis })} />
      <ErrorNotice error={action.error} />
      <div class="actions">
        <button type="button" class="secondary" onClick={onBack}>
          {t('applications.back')}
        </button>
        <button type="submit" disabled={action.busy}>
          {t('applications.createButton')}
        </button>
      </div>
    </form>
  );
}

type FieldProps = { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean };
type UriValues = Pick<Draft, 'redirectUris' | 'postLogoutRedirectUris' | 'allowedOrigins'>;

/** Redirect URIs, post-logout redirect URIs and (for a browser app) the origins it calls from: one per line. */
function UriFields({ preset, origins, values, onInput }: { preset: Preset; origins: boolean; values: UriValues; onInput: (change: Partial<UriValues>) => void }) {
  const textarea = (name: keyof UriValues) => (p: FieldProps) => (
    <textarea {...p} name={name} rows={3} spellcheck={false} autoComplete="off" value={values[name]} onInput={(e) => onInput({ [name]: e.currentTarget.value })} />
  );
  return (
    <>
      <Field label={t('applications.redirectUris')} hint={redirectHint(preset)}>
        {textarea('redirectUris')}
      </Field>
      <Field label={t('applications.postLogoutRedirectUris')} hint={t('applications.postLogoutHint')}>
        {textarea('postLogoutRedirectUris')}
      </Field>
      {origins ? (
        <Field label={t('applications.allowedOrigins')} hint={t('applications.allowedOriginsHint')}>
          {textarea('allowedOrigins')}
        </Field>
      ) : null}
    </>
  );
}

/** The registered APIs, each with a checkbox per scope: which of them the application may ask for. */
function ApiChoice({ value, onChange }: { value: ApiScopes; onChange: (apis: ApiScopes) => void }) {
  const apis = useLoad(loadApiCatalogue, []);
  const toggle = (identifier: string, scope: string, on: boolean) => {
    const scopes = new Set(value[identifier] ?? []);
    if (on) scopes.add(scope);
    else scopes.delete(scope);
    const { [identifier]: _, ...rest } = value;
    onChange(scopes.size ? { ...rest, [identifier]: [...scopes] } : rest);
  };
  return (
    <fieldset>
      <legend>{t('applications.apis')}</legend>
      <p class="hint">{t('applications.apisHint')}</p>
      <Loading loaded={apis} />
      {apis.data?.length === 0 ? <p>{t('applications.noApis')}</p> : null}
      {apis.data?.map((api) => (
        <fieldset key={api.id} class="api-scopes">
          <legend>
            {api.name ?? api.identifier} {api.name ? <span class="mono muted">{api.identifier}</span> : null}
          </legend>
          {api.scopes.length ? null : <p class="muted small">{t('applications.apiWithoutScopes')}</p>}
          {api.scopes.map((scope) => (
            <label key={scope} class="choice">
              <input type="checkbox" checked={(value[api.identifier] ?? []).includes(scope)} onChange={(e) => toggle(api.identifier, scope, e.currentTarget.checked)} />
              <span>
                <code>{scope}</code> {api.scopeDescriptions[scope] ? <span class="muted">{api.scopeDescriptions[scope]}</span> : null}
              </span>
            </label>
          ))}
        </fieldset>
      ))}
    </fieldset>
  );
}

function Credentials({ preset, created }: { preset: Preset; created: Created }) {
  const { client, clientSecret } = created;
  return (
    <>
      <StepHeading>{t('applications.step3')}</StepHeading>
      <p class="notice ok" role="status">
        {t('applications.createdNotice', { name: client.name })}
      </p>
      <dl class="facts">
        <dt>{t('applications.clientId')}</dt>
        <dd>
          <code>{client.clientId}</code> <CopyButton value={client.clientId} label={t('applications.copyClientId')} />
        </dd>
      </dl>
      {clientSecret ? <NewSecret secret={clientSecret} /> : <p>{t('applications.noSecret')}</p>}
      <QuickStart client={client} preset={preset} />
      <div class="actions">
        <a class="button" href={`/console/applications/${encodeURIComponent(client.clientId)}`}>
          {t('applications.open')}
        </a>
        <a class="button secondary" href="/console/applications">
          {t('applications.backToList')}
        </a>
      </div>
    </>
  );
}

/** A secret, the one time it is shown. */
function NewSecret({ secret }: { secret: string }) {
  return (
    <div class="new-secret">
      <h3>{t('applications.secret')}</h3>
      <p class="notice warning">{t('applications.secretOnce')}</p>
      <div class="secret">
        <code>{secret}</code>
        <CopyButton value={secret} label={t('applications.copySecret')} />
      </div>
    </div>
  );
}

/* ---------- Quick start: code for the application's kind, with its own values ---------- */

interface SnippetValues {
  issuer: string;
  clientId: string;
  redirectUri: string;
  postLogoutRedirectUri: string | undefined;
  /** The first API it may use (one access token is for one API), and its scopes there. */
  api: { identifier: string; scopes: string[] } | undefined;
}

const str = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
const sh = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

function snippetValues(client: Client): SnippetValues {
  const [identifier, scopes] = Object.entries(client.apis)[0] ?? [];
  return {
    issuer: config.issuer,
    clientId: client.clientId,
    redirectUri: client.redirectUris[0] ?? 'https://app.example.com/callback',
    postLogoutRedirectUri: client.postLogoutRedirectUris[0],
    api: identifier ? { identifier, scopes: scopes ?? [] } : undefined,
  };
}

const signInScope = (v: SnippetValues) => ['openid profile email offline_access', ...(v.api?.scopes ?? [])].join(' ');
/** A plain-http issuer (development) must be allowed explicitly in openid-client. */
const insecure = (v: SnippetValues) => v.issuer.startsWith('http:');
/** openid-client's configuration: with the secret from the environment, or none (a public client). */
function discovery(v: SnippetValues, publicClient: boolean): string {
  const auth = publicClient ? ['undefined', 'client.None()'] : ['process.env.CLIENT_SECRET', ...(insecure(v) ? ['undefined'] : [])];
  const args = [`new URL(${str(v.issuer)})`, str(v.clientId), ...auth, ...(insecure(v) ? ['{ execute: [client.allowInsecureRequests] }'] : [])];
  return `const config = await client.discovery(${args.join(', ')});`;
}

/** The authorization request, as openid-client builds it (the same for a web app and a native app). */
const authorizationUrl = (v: SnippetValues, redirect: string) =>
  [
    'const codeVerifier = client.randomPKCECodeVerifier();',
    'const state = client.randomState();',
    'const authorizationUrl = client.buildAuthorizationUrl(config, {',
    `  redirect_uri: ${redirect},`,
    `  scope: ${str(signInScope(v))},`,
    "  prompt: 'consent', // a refresh token (offline_access) is issued only with it",
    ...(v.api ? [`  resource: ${str(v.api.identifier)},`] : []),
    '  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),',
    "  code_challenge_method: 'S256',",
    '  state,',
    '});',
  ].join('\n');

function spaSnippet(v: SnippetValues): string {
  return [
    "import { UserManager } from 'oidc-client-ts';",
    '',
    'const userManager = new UserManager({',
    `  authority: ${str(v.issuer)},`,
    `  client_id: ${str(v.clientId)},`,
    `  redirect_uri: ${str(v.redirectUri)},`,
    ...(v.postLogoutRedirectUri ? [`  post_logout_redirect_uri: ${str(v.postLogoutRedirectUri)},`] : []),
    `  scope: ${str(signInScope(v))},`,
    "  prompt: 'consent', // a refresh token (offline_access) is issued only with it",
    ...(v.api ? [`  resource: ${str(v.api.identifier)},`] : ['  loadUserInfo: true,']),
    '});',
    '',
    '// The "Sign in" button (PKCE is always on):',
    'await userManager.signinRedirect();',
    '',
    '// On the redirect URI\'s page:',
    'const user = await userManager.signinRedirectCallback();',
    v.api ? '// user.profile: the ID token\'s claims; user.access_token: a JWT for the API' : '// user.profile: the claims of the ID token and /userinfo',
    '',
    '// Later, fresh tokens with the refresh token:',
    'await userManager.signinSilent();',
  ].join('\n');
}

function webSnippet(v: SnippetValues): string {
  return [
    "import * as client from 'openid-client';",
    '',
    '// Once, at start. Keep the secret out of the code.',
    discovery(v, false),
    '',
    '// Sign-in: keep codeVerifier and state in the user\'s session, then redirect to authorizationUrl.',
    authorizationUrl(v, str(v.redirectUri)),
    '',
    '// At the redirect URI: currentUrl is the whole URL the browser came back to.',
    'const tokens = await client.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: codeVerifier, expectedState: state });',
    'const claims = tokens.claims(); // the validated ID token',
    '',
    '// Later: fresh tokens. The refresh token is rotated: store the new one.',
    'const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);',
  ].join('\n');
}

/** The loopback redirect URI the app registered (any port matches), or the usual one. */
function loopback(v: SnippetValues, client: Client): { host: string; path: string } {
  const registered = client.redirectUris.map((u) => URL.parse(u)).find((u) => u?.protocol === 'http:');
  return registered ? { host: registered.hostname, path: registered.pathname } : { host: '127.0.0.1', path: v.redirectUri.startsWith('http') ? new URL(v.redirectUri).pathname : '/callback' };
}

function nativeSnippet(v: SnippetValues, client: Client): string {
  const { host, path } = loopback(v, client);
  return [
    "import { once } from 'node:events';",
    "import { createServer } from 'node:http';",
    "import * as client from 'openid-client';",
    '',
    '// A public client: no secret, PKCE protects the code.',
    discovery(v, true),
    '',
    '// The code comes back to the loopback address, on whatever port is free (RFC 8252).',
    `const server = createServer().listen(0, ${str(host)});`,
    "await once(server, 'listening');",
    `const redirectUri = \`http://${host}:\${server.address().port}${path}\`;`,
    '',
    authorizationUrl(v, 'redirectUri'),
    '',
    '// Open authorizationUrl in the system browser (never a web view), then wait for it to come back:',
    "const [request, response] = await once(server, 'request');",
    "response.end('You can close this window.');",
    'server.close();',
    'const tokens = await client.authorizationCodeGrant(config, new URL(request.url, redirectUri), { pkceCodeVerifier: codeVerifier, expectedState: state });',
  ].join('\n');
}

function curlSnippet(v: SnippetValues): string {
  return [
    `curl -s -u ${sh(v.clientId)}:"$CLIENT_SECRET" \\`,
    '  -d grant_type=client_credentials \\',
    ...(v.api ? [`  -d resource=${sh(v.api.identifier)} \\`] : []),
    ...(v.api?.scopes.length ? [`  -d scope=${sh(v.api.scopes.join(' '))} \\`] : []),
    `  ${sh(`${v.issuer}/token`)}`,
  ].join('\n');
}

function machineSnippet(v: SnippetValues): string {
  const params = [...(v.api ? [`resource: ${str(v.api.identifier)}`] : []), ...(v.api?.scopes.length ? [`scope: ${str(v.api.scopes.join(' '))}`] : [])];
  return [
    "import * as client from 'openid-client';",
    '',
    discovery(v, false),
    `const tokens = await client.clientCredentialsGrant(config, { ${params.join(', ')} });`,
    '// tokens.access_token: a JWT for the API, valid for tokens.expires_in seconds',
  ].join('\n');
}

interface Snippet {
  title: string;
  library: string;
  code: string;
}

function snippetsFor(preset: Preset, client: Client): Snippet[] {
  const v = snippetValues(client);
  switch (preset) {
    case 'spa':
      return [{ title: t('applications.snippet.spa'), library: 'oidc-client-ts', code: spaSnippet(v) }];
    case 'web':
      return [{ title: t('applications.snippet.web'), library: 'openid-client', code: webSnippet(v) }];
    case 'native':
      return [{ title: t('applications.snippet.native'), library: 'openid-client', code: nativeSnippet(v, client) }];
    case 'm2m':
      return [
        { title: t('applications.snippet.curl'), library: 'curl', code: curlSnippet(v) },
        { title: t('applications.snippet.m2m'), library: 'openid-client', code: machineSnippet(v) },
      ];
  }
}

function QuickStart({ client, preset }: { client: Client; preset: Preset }) {
  const v = snippetValues(client);
  return (
    <section class="quick-start" aria-labelledby="quick-start">
      <h2 id="quick-start">{t('applications.quickStart')}</h2>
      <p>{t('applications.quickStartIntro')}</p>
      {preset === 'native' ? <NativeIntro v={v} /> : null}
      {client.public ? null : <p class="muted">{t('applications.secretFromEnv')}</p>}
      {snippetsFor(preset, client).map((s) => (
        <div key={s.title} class="snippet">
          <div class="snippet-head">
            <h3>{s.title}</h3>
            <CopyButton value={s.code} label={t('applications.copyCode', { library: s.library })} />
          </div>
          <pre>
            <code>{s.code}</code>
          </pre>
        </div>
      ))}
    </section>
  );
}

/** How a native app signs people in, AppAuth-style, with the values to configure. */
function NativeIntro({ v }: { v: SnippetValues }) {
  return (
    <>
      <p>{t('applications.nativeIntro')}</p>
      <dl class="facts">
        <dt>{t('applications.issuer')}</dt>
        <dd class="mono">{v.issuer}</dd>
        <dt>{t('applications.clientId')}</dt>
        <dd class="mono">{v.clientId}</dd>
        <dt>{t('applications.redirectUri')}</dt>
        <dd class="mono">{v.redirectUri}</dd>
        <dt>{t('applications.scopes')}</dt>
        <dd class="mono">{signInScope(v)}</dd>
        {v.api ? (
          <>
            <dt>{t('applications.resourceParameter')}</dt>
            <dd class="mono">resource={v.api.identifier}</dd>
          </>
        ) : null}
      </dl>
    </>
  );
}

/* ---------- One application ---------- */

function ApplicationDetail({ clientId }: { clientId: string }) {
  const loaded = useLoad(() => get<Client>(clientPath(clientId)), [clientId]);
  const apis = useLoad(loadApiCatalogue, []);
  const client = loaded.data;
  const builtIn = BUILT_IN.has(clientId);
  const writable = canWrite() && !builtIn;
  return (
    <Screen title={client?.name ?? t('applications.title')}>
      <p>
        <a href="/console/applications">{t('applications.backToList')}</a>
      </p>
      <Loading loaded={loaded} />
      {client ? (
        <>
          {builtIn ? <p class="notice">{t('applications.builtInNotice')}</p> : null}
          {client.admin ? <p class="notice">{t('applications.adminNotice')}</p> : null}
          {skipsPkce(client) ? (
            <p class="notice warning">
              <strong>{t('applications.security.pkceWarningLabel')}</strong> {t('applications.security.pkceWarning')}
            </p>
          ) : null}
          <Facts client={client} apis={apis.data ?? []} />
          {writable ? <EditClient key={client.clientId} client={client} onSaved={loaded.reload} /> : null}
          {builtIn || client.admin ? null : <Security key={client.clientId} client={client} writable={writable} onSaved={loaded.reload} />}
          {writable && !client.public ? <RotateSecret client={client} onRotated={loaded.reload} /> : null}
          {builtIn || client.admin || !client.grantTypes.includes('client_credentials') ? null : <RoleAssignments holder={clientPath(clientId)} empty={t('applications.noRoles')} />}
          {builtIn || client.admin ? null : <QuickStart client={client} preset={presetOf(client)} />}
          {writable ? <Manage client={client} onChanged={loaded.reload} /> : null}
        </>
      ) : null}
    </Screen>
  );
}

const listOrDash = (items: string[]) =>
  items.length ? (
    <ul class="plain">
      {items.map((i) => (
        <li key={i} class="mono">
          {i}
        </li>
      ))}
    </ul>
  ) : (
    '—'
  );

function Facts({ client, apis }: { client: Client; apis: Api[] }) {
  const apiName = (identifier: string) => apis.find((a) => a.identifier === identifier)?.name;
  const entries = Object.entries(client.apis);
  return (
    <dl class="facts">
      <dt>{t('applications.clientId')}</dt>
      <dd>
        <code>{client.clientId}</code> <CopyButton value={client.clientId} label={t('applications.copyClientId')} />
      </dd>
      <dt>{t('applications.type')}</dt>
      <dd>
        {client.public ? t('applications.public') : t('applications.confidential')}
        {BUILT_IN.has(client.clientId) ? null : ` · ${PRESET_NAMES[presetOf(client)]()}`}
      </dd>
      <dt>{t('applications.status')}</dt>
      <dd>
        <StatusBadge client={client} />
      </dd>
      <dt>{t('applications.grantTypes')}</dt>
      <dd>{listOrDash(client.grantTypes)}</dd>
      <dt>{t('applications.redirectUris')}</dt>
      <dd>{listOrDash(client.redirectUris)}</dd>
      <dt>{t('applications.postLogoutRedirectUris')}</dt>
      <dd>{listOrDash(client.postLogoutRedirectUris)}</dd>
      {client.allowedOrigins.length ? (
        <>
          <dt>{t('applications.allowedOrigins')}</dt>
          <dd>{listOrDash(client.allowedOrigins)}</dd>
        </>
      ) : null}
      <dt>{t('applications.apis')}</dt>
      <dd>
        {entries.length ? (
          <ul class="plain">
            {entries.map(([identifier, scopes]) => (
              <li key={identifier}>
                {apiName(identifier) ?? ''} <span class="mono">{identifier}</span>: <span class="mono">{scopes.join(' ') || '—'}</span>
              </li>
            ))}
          </ul>
        ) : (
          '—'
        )}
      </dd>
      {client.grantTypes.includes('authorization_code') ? (
        <>
          <dt>{t('applications.requireMfa')}</dt>
          <dd>{client.requireMfa ? t('applications.mfaRequired') : t('applications.mfaNotRequired')}</dd>
        </>
      ) : null}
      <dt>{t('applications.created')}</dt>
      <dd>{formatDate(client.createdAt)}</dd>
      {client.previousSecretExpiresAt ? (
        <>
          <dt>{t('applications.previousSecret')}</dt>
          <dd>{t('applications.previousSecretUntil', { date: formatDate(client.previousSecretExpiresAt) })}</dd>
        </>
      ) : null}
    </dl>
  );
}

/** What PATCH /clients/:id accepts and this form offers: an admin client's name only. */
function EditClient({ client, onSaved }: { client: Client; onSaved: () => void }) {
  const signsPeopleIn = client.grantTypes.includes('authorization_code');
  const [name, setName] = useState(client.name);
  const [uris, setUris] = useState<UriValues>({
    redirectUris: client.redirectUris.join('\n'),
    postLogoutRedirectUris: client.postLogoutRedirectUris.join('\n'),
    allowedOrigins: client.allowedOrigins.join('\n'),
  });
  const [apis, setApis] = useState<ApiScopes>(client.apis);
  const [requireMfa, setRequireMfa] = useState(client.requireMfa);
  const [saved, setSaved] = useState(false);
  const save = useAction(async () => {
    setSaved(false);
    const patch = {
      name: name.trim(),
      ...(signsPeopleIn && !client.admin ? { redirectUris: lines(uris.redirectUris), postLogoutRedirectUris: lines(uris.postLogoutRedirectUris), allowedOrigins: lines(uris.allowedOrigins) } : {}),
      // Only when changed: an API removed since, or one allowed without scopes, is kept as it is.
      ...(client.admin || sameApis(apis, client.apis) ? {} : { apis }),
      ...(signsPeopleIn && !client.admin ? { requireMfa } : {}),
    };
    await call('PATCH', clientPath(client.clientId), patch);
    onSaved();
    setSaved(true);
  });
  return (
    <section aria-labelledby="edit-app">
      <h2 id="edit-app">{t('applications.edit')}</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <Field label={t('applications.name')}>{(p) => <input {...p} type="text" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}</Field>
        {signsPeopleIn && !client.admin ? <UriFields preset={presetOf(client)} origins={presetOf(client) === 'spa' || client.allowedOrigins.length > 0} values={uris} onInput={(c) => setUris({ ...uris, ...c })} /> : null}
        {signsPeopleIn && !client.admin ? (
          <div class="field">
            <label class="choice" for="app-requireMfa">
              <input type="checkbox" id="app-requireMfa" name="requireMfa" checked={requireMfa} onChange={(e) => setRequireMfa(e.currentTarget.checked)} aria-describedby="app-requireMfa-hint" />
              <span>{t('applications.requireMfaLabel')}</span>
            </label>
            <p class="hint checkbox-hint" id="app-requireMfa-hint">
              {t('applications.requireMfaHint')}
            </p>
          </div>
        ) : null}
        {client.admin ? null : <ApiChoice value={apis} onChange={setApis} />}
        <ErrorNotice error={save.error} />
        <div class="actions">
          <button type="submit" disabled={save.busy}>
            {t('save')}
          </button>
          <span role="status">{saved ? t('saved') : ''}</span>
        </div>
      </form>
    </section>
  );
}

/* ---------- Security: how it authenticates, and what its requests and tokens must be ---------- */

/** A confidential app an admin let skip PKCE (a public client always uses it). */
const skipsPkce = (c: Client) => !c.public && !c.requirePkce;
const hasKeys = (c: Client) => c.jwks !== null || c.jwksUri !== null;
/** Its sign-in starts with an authorization request (PKCE, PAR and JAR are about those). */
const authorizes = (c: Client) => c.grantTypes.includes('authorization_code');
/** It signs people in, so that a session it started may end (back-channel logout). */
const hasSessions = (c: Client) => authorizes(c) || c.grantTypes.includes('urn:ietf:params:oauth:grant-type:device_code');

/** Which settings apply to this client: those that fit its grants, and any already set (so that it can be unset). */
function securityShape(c: Client) {
  return {
    pkce: !c.public && (authorizes(c) || !c.requirePkce),
    par: authorizes(c) || c.requirePushedAuthorizationRequests,
    jar: authorizes(c) || c.requireSignedRequestObject,
    reuse: c.grantTypes.includes('refresh_token'),
    backchannel: hasSessions(c) || c.backchannelLogoutUri !== null || c.backchannelLogoutSessionRequired,
  };
}

const AUTH_METHODS = new Set(['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt']);

function Security({ client, writable, onSaved }: { client: Client; writable: boolean; onSaved: () => void }) {
  return (
    <section aria-labelledby="app-security">
      <h2 id="app-security">{t('applications.security.title')}</h2>
      <p>{t('applications.security.intro')}</p>
      <dl class="facts">
        <AuthFacts client={client} />
        {writable ? null : <SecurityFacts client={client} />}
      </dl>
      {writable ? <SecurityForm client={client} onSaved={onSaved} /> : null}
    </section>
  );
}

/** How it authenticates at the token endpoint, and its keys. Read only: keys are set when it is registered. */
function AuthFacts({ client }: { client: Client }) {
  const method = client.tokenEndpointAuthMethod;
  return (
    <>
      <dt>{t('applications.security.authMethod')}</dt>
      <dd>
        {AUTH_METHODS.has(method) ? `${t(`applications.security.auth.${method}`)} ` : null}
        <code>{method}</code>
      </dd>
      {client.jwks ? (
        <>
          <dt>{t('applications.security.keys')}</dt>
          <dd>
            {t('applications.security.keysInline', { count: client.jwks.keys.length })}
            <ul class="plain">
              {client.jwks.keys.map((key, i) => (
                <li key={i}>
                  {typeof key.kid === 'string' ? <span class="mono">{key.kid}</span> : <span class="muted">{t('applications.security.noKid')}</span>}
                  {typeof key.kty === 'string' ? <span class="muted"> · {key.kty}</span> : null}
                </li>
              ))}
            </ul>
          </dd>
        </>
      ) : null}
      {client.jwksUri ? (
        <>
          <dt>{t('applications.security.keys')}</dt>
          <dd>
            {t('applications.security.keysAt')} <span class="mono">{client.jwksUri}</span>
          </dd>
        </>
      ) : null}
    </>
  );
}

/** The settings as they are, for someone who may not change them. */
function SecurityFacts({ client }: { client: Client }) {
  const shape = securityShape(client);
  const required = (on: boolean) => (on ? t('applications.security.required') : t('applications.security.notRequired'));
  return (
    <>
      <dt>{t('applications.security.pkce')}</dt>
      <dd>{client.public ? t('applications.security.pkceAlways') : client.requirePkce ? t('applications.security.required') : t('applications.security.pkceOptional')}</dd>
      {shape.par ? (
        <>
          <dt>{t('applications.security.par')}</dt>
          <dd>{required(client.requirePushedAuthorizationRequests)}</dd>
        </>
      ) : null}
      <dt>{t('applications.security.dpop')}</dt>
      <dd>{required(client.dpopBoundAccessTokens)}</dd>
      {shape.jar ? (
        <>
          <dt>{t('applications.security.jar')}</dt>
          <dd>{required(client.requireSignedRequestObject)}</dd>
        </>
      ) : null}
      {shape.reuse ? (
        <>
          <dt>{t('applications.security.reuseShort')}</dt>
          <dd>{client.refreshTokenReuseInterval ? t('applications.security.reuseSeconds', { count: client.refreshTokenReuseInterval }) : t('applications.security.reuseStrict')}</dd>
        </>
      ) : null}
      {shape.backchannel ? (
        <>
          <dt>{t('applications.security.backchannelUri')}</dt>
          <dd>{client.backchannelLogoutUri ? <span class="mono">{client.backchannelLogoutUri}</span> : '—'}</dd>
          <dt>{t('applications.security.backchannelSession')}</dt>
          <dd>{client.backchannelLogoutSessionRequired ? t('applications.security.needed') : t('applications.security.notNeeded')}</dd>
        </>
      ) : null}
    </>
  );
}

/** A checkbox with its label and a hint tied to it. */
function Check({ name, label, hint, checked, disabled, onChange }: { name: string; label: string; hint: string; checked: boolean; disabled?: boolean; onChange: (on: boolean) => void }) {
  const id = useId();
  return (
    <div class="field">
      <label class="choice" for={id}>
        <input type="checkbox" id={id} name={name} checked={checked} disabled={disabled} onChange={(e) => onChange(e.currentTarget.checked)} aria-describedby={`${id}-hint`} />
        <span>{label}</span>
      </label>
      <p class="hint checkbox-hint" id={`${id}-hint`}>
        {hint}
      </p>
    </div>
  );
}

interface SecurityDraft {
  allowNoPkce: boolean;
  par: boolean;
  dpop: boolean;
  jar: boolean;
  reuse: string;
  backchannelUri: string;
  backchannelSession: boolean;
}

/** The reuse interval as typed: a number (the API says whether it is a whole one from 0 to 60), empty meaning 0. */
const seconds = (typed: string) => (typed.trim() === '' ? 0 : Number(typed));

/** What PATCH /clients/:id is sent: only what changed. */
function securityPatch(c: Client, d: SecurityDraft): Record<string, unknown> {
  const shape = securityShape(c);
  const patch: Record<string, unknown> = {};
  if (shape.pkce && d.allowNoPkce === c.requirePkce) patch.requirePkce = !d.allowNoPkce;
  if (shape.par && d.par !== c.requirePushedAuthorizationRequests) patch.requirePushedAuthorizationRequests = d.par;
  if (d.dpop !== c.dpopBoundAccessTokens) patch.dpopBoundAccessTokens = d.dpop;
  if (shape.jar && d.jar !== c.requireSignedRequestObject) patch.requireSignedRequestObject = d.jar;
  if (shape.reuse && seconds(d.reuse) !== c.refreshTokenReuseInterval) patch.refreshTokenReuseInterval = seconds(d.reuse);
  if (shape.backchannel) {
    // Empty removes it (null).
    const uri = d.backchannelUri.trim() || null;
    if (uri !== c.backchannelLogoutUri) patch.backchannelLogoutUri = uri;
    if (d.backchannelSession !== c.backchannelLogoutSessionRequired) patch.backchannelLogoutSessionRequired = d.backchannelSession;
  }
  return patch;
}

function SecurityForm({ client, onSaved }: { client: Client; onSaved: () => void }) {
  const shape = securityShape(client);
  const [draft, setDraft] = useState<SecurityDraft>({
    allowNoPkce: !client.requirePkce,
    par: client.requirePushedAuthorizationRequests,
    dpop: client.dpopBoundAccessTokens,
    jar: client.requireSignedRequestObject,
    reuse: String(client.refreshTokenReuseInterval),
    backchannelUri: client.backchannelLogoutUri ?? '',
    backchannelSession: client.backchannelLogoutSessionRequired,
  });
  const [status, setStatus] = useState('');
  const set = (change: Partial<SecurityDraft>) => setDraft((d) => ({ ...d, ...change }));
  const save = useAction(async () => {
    setStatus('');
    const patch = securityPatch(client, draft);
    if (!Object.keys(patch).length) {
      setStatus(t('applications.security.unchanged'));
      return;
    }
    await call('PATCH', clientPath(client.clientId), patch);
    onSaved();
    setStatus(t('saved'));
  });
  // The browser does not stop the form: the API says what is wrong, in the same words everywhere.
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      {shape.pkce ? (
        <Check name="allowNoPkce" label={t('applications.security.allowNoPkce')} hint={t('applications.security.allowNoPkceHint')} checked={draft.allowNoPkce} onChange={(allowNoPkce) => set({ allowNoPkce })} />
      ) : null}
      {shape.par ? <Check name="par" label={t('applications.security.parLabel')} hint={t('applications.security.parHint')} checked={draft.par} onChange={(par) => set({ par })} /> : null}
      <Check name="dpop" label={t('applications.security.dpopLabel')} hint={t('applications.security.dpopHint')} checked={draft.dpop} onChange={(dpop) => set({ dpop })} />
      {shape.jar ? (
        <Check
          name="jar"
          label={t('applications.security.jarLabel')}
          hint={hasKeys(client) ? t('applications.security.jarHint') : `${t('applications.security.jarHint')} ${t('applications.security.jarNeedsKeys')}`}
          checked={draft.jar}
          // Without keys it can only be turned off (the API refuses it on).
          disabled={!hasKeys(client) && !draft.jar}
          onChange={(jar) => set({ jar })}
        />
      ) : null}
      {shape.reuse ? (
        <Field label={t('applications.security.reuse')} hint={t('applications.security.reuseHint')}>
          {(p) => <input {...p} class="short" type="number" name="refreshTokenReuseInterval" min={0} max={60} step={1} value={draft.reuse} onInput={(e) => set({ reuse: e.currentTarget.value })} />}
        </Field>
      ) : null}
      {shape.backchannel ? (
        <>
          <Field label={t('applications.security.backchannelUri')} hint={t('applications.security.backchannelUriHint')}>
            {(p) => <input {...p} type="url" name="backchannelLogoutUri" maxLength={2048} spellcheck={false} autoComplete="off" value={draft.backchannelUri} onInput={(e) => set({ backchannelUri: e.currentTarget.value })} />}
          </Field>
          <Check
            name="backchannelLogoutSessionRequired"
            label={t('applications.security.backchannelSessionLabel')}
            hint={t('applications.security.backchannelSessionHint')}
            checked={draft.backchannelSession}
            onChange={(backchannelSession) => set({ backchannelSession })}
          />
        </>
      ) : null}
      <ErrorNotice error={save.error} />
      <div class="actions">
        <button type="submit" disabled={save.busy}>
          {t('applications.security.save')}
        </button>
        <span role="status">{status}</span>
      </div>
    </form>
  );
}

function RotateSecret({ client, onRotated }: { client: Client; onRotated: () => void }) {
  const [hours, setHours] = useState('0');
  const [secret, setSecret] = useState<string>();
  const overlap = Math.min(MAX_OVERLAP_HOURS, Math.max(0, Math.floor(Number(hours) || 0)));
  return (
    <section aria-labelledby="rotate-secret">
      <h2 id="rotate-secret">{t('applications.secret')}</h2>
      <p>{t('applications.rotateIntro')}</p>
      <Field label={t('applications.overlapHours')} hint={t('applications.overlapHint', { max: MAX_OVERLAP_HOURS })}>
        {(p) => <input {...p} class="short" type="number" min={0} max={MAX_OVERLAP_HOURS} step={1} value={hours} onInput={(e) => setHours(e.currentTarget.value)} />}
      </Field>
      <ConfirmButton
        label={t('applications.rotate')}
        question={overlap ? t('applications.rotateQuestionOverlap', { hours: overlap }) : t('applications.rotateQuestion')}
        onConfirm={async () => {
          const result = await call<Created>('POST', `${clientPath(client.clientId)}/rotate-secret`, { overlapSeconds: overlap * 3600 });
          setSecret(result.clientSecret);
          onRotated();
        }}
      />
      {secret ? <NewSecret secret={secret} /> : null}
    </section>
  );
}

/** Disable or enable, and delete. */
function Manage({ client, onChanged }: { client: Client; onChanged: () => void }) {
  const enable = useAction(async () => {
    await call('POST', `${clientPath(client.clientId)}/enable`);
    onChanged();
  });
  return (
    <section aria-labelledby="manage-app">
      <h2 id="manage-app">{t('applications.manage')}</h2>
      <p>{client.disabled ? t('applications.disabledHint') : t('applications.disableHint')}</p>
      <div class="actions">
        {client.disabled ? (
          <button type="button" class="secondary" disabled={enable.busy} onClick={() => void enable.run()}>
            {t('applications.enable')}
          </button>
        ) : (
          <ConfirmButton
            label={t('applications.disable')}
            question={t('applications.disableQuestion', { name: client.name })}
            onConfirm={async () => {
              await call('POST', `${clientPath(client.clientId)}/disable`);
              onChanged();
            }}
          />
        )}
        <ConfirmButton
          danger
          label={t('applications.delete')}
          question={t('applications.deleteQuestion', { name: client.name })}
          onConfirm={async () => {
            await call('DELETE', clientPath(client.clientId));
            navigate('applications');
          }}
        />
      </div>
      <ErrorNotice error={enable.error} />
    </section>
  );
}
