import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get } from './api.ts';
import { completeSignIn, currentSession, onSessionChange, SIGNED_OUT_STATE, signIn, signOut } from './auth.ts';
import { config } from './config.ts';
import { currentLocale, languageName, onLocaleChange, switchLocale, t } from './i18n.ts';
import { currentPath, navigate, onLinkClick, onNavigate } from './router.ts';
import { Apis } from './screens/apis.tsx';
import { Applications } from './screens/applications.tsx';
import { AuditTrail } from './screens/audit.tsx';
import { SigningKeys } from './screens/keys.tsx';
import { Overview } from './screens/overview.tsx';
import { Roles } from './screens/roles.tsx';
import { Settings } from './screens/settings.tsx';
import { SignInServices } from './screens/sign-in-services.tsx';
import { Users } from './screens/users.tsx';

/** A screen gets the rest of the path after its own name (`applications/abc` → `['abc']`). */
export type ScreenProps = { path: string[] };

interface Section {
  path: string;
  label: string;
  screen: ComponentType<ScreenProps>;
}

/** The sections of the console, in the order of its navigation. */
const sections = (): Section[] => [
  { path: '', label: t('nav.overview'), screen: Overview },
  { path: 'applications', label: t('nav.applications'), screen: Applications },
  { path: 'apis', label: t('nav.apis'), screen: Apis },
  { path: 'users', label: t('nav.users'), screen: Users },
  { path: 'roles', label: t('nav.roles'), screen: Roles },
  { path: 'sign-in-services', label: t('nav.sign-in-services'), screen: SignInServices },
  { path: 'keys', label: t('nav.keys'), screen: SigningKeys },
  { path: 'audit', label: t('nav.audit'), screen: AuditTrail },
  { path: 'settings', label: t('nav.settings'), screen: Settings },
];

const ADMIN_SCOPES = ['admin', 'admin:read'];

function useRerender(subscribe: (fn: () => void) => () => unknown) {
  const [, set] = useState(0);
  useEffect(() => {
    const off = subscribe(() => set((n) => n + 1));
    return () => {
      off();
    };
  }, [subscribe]);
}

type State = { kind: 'starting' } | { kind: 'signed-out' } | { kind: 'failed' } | { kind: 'ready' };

export function App() {
  const [state, setState] = useState<State>({ kind: 'starting' });
  useRerender(onNavigate);
  useRerender(onLocaleChange);
  useRerender(onSessionChange);

  useEffect(() => {
    const here = new URL(location.href);
    if (currentPath() === 'callback') {
      completeSignIn(here).then(
        (back) => {
          navigate(back || '/console/', { replace: true });
          setState({ kind: 'ready' });
        },
        () => setState({ kind: 'failed' }),
      );
    } else if (here.searchParams.get('state') === SIGNED_OUT_STATE) {
      history.replaceState(null, '', '/console/');
      setState({ kind: 'signed-out' });
    } else {
      void signIn(here.pathname + here.search);
    }
  }, []);

  if (state.kind === 'starting') return <Frame><p role="status" class="muted">{t('signingIn')}</p></Frame>;
  if (state.kind === 'signed-out')
    return (
      <Frame>
        <h1>{t('signedOut.title')}</h1>
        <p>{t('signedOut.message')}</p>
        <button type="button" onClick={() => void signIn('/console/')}>{t('signIn')}</button>
      </Frame>
    );
  if (state.kind === 'failed')
    return (
      <Frame>
        <h1>{t('signInFailed.title')}</h1>
        <p role="alert">{t('signInFailed.message')}</p>
        <button type="button" onClick={() => void signIn('/console/')}>{t('signInAgain')}</button>
      </Frame>
    );

  const session = currentSession();
  if (!session || !ADMIN_SCOPES.some((s) => session.scopes.has(s))) return <NotAdmin />;
  return <Shell />;
}

/** A page outside the console's frame: signing in, signed out, not an administrator. */
function Frame({ children }: { children: preact.ComponentChildren }) {
  return (
    <main class="frame">
      <div class="card">{children}</div>
      <Languages />
    </main>
  );
}

function NotAdmin() {
  useEffect(() => {
    document.title = `${t('notAdmin.title')} · ${t('title')}`;
  }, []);
  return (
    <Frame>
      <h1>{t('notAdmin.title')}</h1>
      <p>{t('notAdmin.message')}</p>
      <div class="actions">
        <button type="button" onClick={() => void signOut()}>{t('signOut')}</button>
        <a href={`${config.issuer}/account`}>{t('notAdmin.account')}</a>
      </div>
    </Frame>
  );
}

function Languages() {
  if (config.locales.length < 2) return null;
  return (
    <nav class="languages" aria-label={t('language')}>
      {config.locales.map((l) => (
        <button key={l} type="button" class="link" lang={l} aria-current={l === currentLocale() ? 'true' : undefined} onClick={() => void switchLocale(l)}>
          {languageName(l)}
        </button>
      ))}
    </nav>
  );
}

function Shell() {
  const all = sections();
  const [first = '', ...rest] = currentPath().split('/');
  const section = all.find((s) => s.path === first);
  const session = currentSession()!;
  const [me, setMe] = useState<string>('');
  useEffect(() => {
    get<{ email: string | null; name: string | null }>(`/users/${encodeURIComponent(session.userId)}`).then(
      (u) => setMe(u.email ?? u.name ?? session.userId),
      () => setMe(session.userId),
    );
  }, [session.userId]);
  return (
    // biome-ignore lint/a11y/noStaticElementInteractions lint/a11y/useKeyWithClickEvents: delegation of the links' own clicks (keyboard activation is a click too)
    <div class="shell" onClick={onLinkClick}>
      <a class="skip" href="#main">{t('skip')}</a>
      <header class="top">
        <a class="product" href="/console/">{t('title')}</a>
        <div class="me">
          {session.scopes.has('admin') ? null : <span class="badge">{t('readOnly')}</span>}
          <span class="muted small">{me}</span>
          <button type="button" class="secondary" onClick={() => void signOut()}>{t('signOut')}</button>
        </div>
      </header>
      <nav class="sections" aria-label={t('nav.label')}>
        <ul>
          {all.map((s) => (
            <li key={s.path}>
              <a href={`/console/${s.path}`} aria-current={s === section ? 'page' : undefined}>{s.label}</a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" class="content">
        {section ? <section.screen key={first} path={rest} /> : <NotFound />}
      </main>
      <footer class="bottom">
        <Languages />
      </footer>
    </div>
  );
}

function NotFound() {
  return (
    <>
      <h1>{t('notFound.title')}</h1>
      <p>
        <a href="/console/">{t('notFound.back')}</a>
      </p>
    </>
  );
}
