import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, get, type Page, query } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { currentSession } from '../auth.ts';
import { config } from '../config.ts';
import { currentLocale, formatDate, languageName, t } from '../i18n.ts';
import { currentQuery, navigate } from '../router.ts';
import { decoded, describeRole, RoleAssignments } from './roles.tsx';
import { canWrite, ConfirmButton, CopyButton, ErrorNotice, Field, formValues, Loading, Pager, Screen, Table, useAction, useLoad } from '../ui.tsx';

interface User {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  disabled: boolean;
  hasPassword: boolean;
  termsAcceptedAt: string | null;
  /** Custom attributes (a JSON object), which claim mappings put into tokens. */
  attributes: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

interface Role {
  id: string;
  name: string;
  description: string | null;
  builtIn: boolean;
}

interface Identity {
  id: string;
  providerId: string;
  subject: string;
  email: string | null;
  createdAt: string;
  lastLoginAt: string | null;
}

interface Factor {
  id: string;
  type: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

interface Grant {
  grantId: string;
  clientId: string;
  clientName: string | null;
  scopes: string[];
  apis: Record<string, string[]>;
  createdAt: string;
  expiresAt: string | null;
}

const LIMIT = 20;
const userPath = (id: string) => `/users/${encodeURIComponent(id)}`;
const rolesPage = () => get<Page<Role>>('/roles?limit=200');

/** `users` (the list), `users/new` (a form), `users/<id>` (one user). */
export function Users({ path }: ScreenProps) {
  const [first] = path;
  if (!first) return <UserList />;
  if (first === 'new' && canWrite()) return <CreateUser />;
  return <UserDetail id={decoded(first)} />;
}

/** A message that screen readers announce when it appears (the region is always there). */
function Said({ text }: { text: string }) {
  return <div role="status">{text ? <p class="notice ok">{text}</p> : null}</div>;
}

function StatusBadge({ user }: { user: User }) {
  return user.disabled ? <span class="badge off">{t('users.disabled')}</span> : <span class="badge">{t('users.active')}</span>;
}

const yesNo = (value: boolean) => (value ? t('users.yes') : t('users.no'));

function UserList() {
  const params = currentQuery();
  const q = params.get('q') ?? '';
  const offset = Number(params.get('offset')) || 0;
  const users = useLoad(() => get<Page<User>>(`/users${query({ q, limit: LIMIT, offset })}`), [q, offset]);
  const [inviting, setInviting] = useState(false);
  const [said, setSaid] = useState('');
  const search = (event: JSX.TargetedEvent<HTMLFormElement>) => {
    event.preventDefault();
    navigate(`users${query({ q: formValues(event).q?.trim() })}`);
  };
  return (
    <Screen
      title={t('users.title')}
      actions={
        canWrite() ? (
          <>
            <a class="button" href="/console/users/new">
              {t('users.create')}
            </a>
            <button type="button" class="secondary" aria-expanded={inviting} onClick={() => setInviting(!inviting)}>
              {t('users.invite')}
            </button>
          </>
        ) : null
      }
    >
      <Said text={said} />
      {inviting ? (
        <Invite
          onDone={(text) => {
            setInviting(false);
            setSaid(text);
          }}
          onCancel={() => setInviting(false)}
        />
      ) : null}
      <form class="filters users-inline" onSubmit={search}>
        <Field label={t('users.search')} hint={t('users.searchHint')}>
          {(props) => <input {...props} type="search" name="q" defaultValue={q} />}
        </Field>
        <button type="submit" class="secondary">
          {t('users.searchButton')}
        </button>
      </form>
      <Loading loaded={users} />
      {users.data ? (
        <>
          <UserTable users={users.data.items} empty={q ? t('users.noMatch', { q }) : t('users.none')} />
          <Pager page={users.data} onOffset={(next) => navigate(`users${query({ q, offset: next || undefined })}`)} />
        </>
      ) : null}
    </Screen>
  );
}

function UserTable({ users, empty }: { users: User[]; empty: string }) {
  if (!users.length) return <p class="muted">{empty}</p>;
  return (
    <Table caption={t('users.listCaption')}>
      <thead>
        <tr>
          <th scope="col">{t('users.email')}</th>
          <th scope="col">{t('users.name')}</th>
          <th scope="col">{t('users.verified')}</th>
          <th scope="col">{t('users.status')}</th>
          <th scope="col">{t('users.created')}</th>
        </tr>
      </thead>
      <tbody>
        {users.map((u) => (
          <tr key={u.id}>
            <td>
              <a href={`/console/users/${encodeURIComponent(u.id)}`}>{u.email}</a>
            </td>
            <td>{u.name ?? '—'}</td>
            <td>{yesNo(u.emailVerified)}</td>
            <td>
              <StatusBadge user={u} />
            </td>
            <td>{formatDate(u.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

/** POST /invitations: an email with a link to create the account. */
function Invite({ onDone, onCancel }: { onDone: (said: string) => void; onCancel: () => void }) {
  const send = useAction(async (values: Record<string, string>) => {
    const sent = await call<{ email: string; expiresAt: string }>('POST', '/invitations', { email: values.email, ...(values.name?.trim() ? { name: values.name } : {}), locale: values.locale });
    onDone(t('users.invited', { email: sent.email, date: formatDate(sent.expiresAt) }));
  });
  const form = useRef<HTMLFormElement>(null);
  useEffect(() => form.current?.querySelector('input')?.focus(), []);
  return (
    <section class="invite" aria-labelledby="invite-title">
      <h2 id="invite-title">{t('users.inviteTitle')}</h2>
      <p class="hint">{t('users.inviteHint')}</p>
      <form
        ref={form}
        onSubmit={(event) => {
          event.preventDefault();
          void send.run(formValues(event));
        }}
      >
        <Field label={t('users.email')}>{(props) => <input {...props} type="email" name="email" required autocomplete="off" />}</Field>
        <Field label={t('users.nameOptional')} hint={t('users.inviteNameHint')}>
          {(props) => <input {...props} type="text" name="name" autocomplete="off" />}
        </Field>
        <Field label={t('users.inviteLanguage')}>
          {(props) => (
            <select {...props} name="locale">
              {config.locales.map((l) => (
                <option key={l} value={l} lang={l} selected={l === currentLocale()}>
                  {languageName(l)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <ErrorNotice error={send.error} />
        <div class="actions">
          <button type="submit" disabled={send.busy}>
            {t('users.inviteSend')}
          </button>
          <button type="button" class="secondary" onClick={onCancel}>
            {t('cancel')}
          </button>
        </div>
      </form>
    </section>
  );
}

/** Checkboxes for the roles to give (name="role"). */
function RoleChoices({ roles }: { roles: Role[] }) {
  return (
    <fieldset>
      <legend>{t('users.roles')}</legend>
      {roles.map((r) => (
        <label key={r.id} class="choice">
          <input type="checkbox" name="role" value={r.name} />
          <span>
            {r.name}
            {describeRole(r) ? <span class="muted small"> — {describeRole(r)}</span> : null}
          </span>
        </label>
      ))}
    </fieldset>
  );
}

function CreateUser() {
  const roles = useLoad(rolesPage, []);
  const [created, setCreated] = useState<User>();
  const create = useAction(async (form: HTMLFormElement) => {
    const data = new FormData(form);
    const value = (name: string) => String(data.get(name) ?? '').trim();
    // Once created, a second try only gives the roles again (giving a role twice changes nothing).
    const user =
      created ??
      (await call<User>('POST', '/users', {
        email: value('email'),
        ...(value('name') ? { name: value('name') } : {}),
        ...(data.get('password') ? { password: String(data.get('password')) } : {}),
        emailVerified: data.get('emailVerified') === 'on',
      }));
    try {
      await Promise.all(data.getAll('role').map((r) => call('PUT', `${userPath(user.id)}/roles/${encodeURIComponent(String(r))}`)));
    } catch (err) {
      setCreated(user);
      throw err;
    }
    navigate(`users/${encodeURIComponent(user.id)}`);
  });
  return (
    <Screen title={t('users.createTitle')}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void create.run(event.currentTarget);
        }}
      >
        <Field label={t('users.email')}>{(props) => <input {...props} type="email" name="email" required autocomplete="off" disabled={Boolean(created)} />}</Field>
        <Field label={t('users.nameOptional')}>{(props) => <input {...props} type="text" name="name" autocomplete="off" disabled={Boolean(created)} />}</Field>
        <Field label={t('users.passwordOptional')} hint={t('users.passwordHint')}>
          {(props) => <input {...props} type="password" name="password" autocomplete="new-password" disabled={Boolean(created)} />}
        </Field>
        <label class="choice">
          <input type="checkbox" name="emailVerified" disabled={Boolean(created)} />
          <span>{t('users.markVerified')}</span>
        </label>
        <Loading loaded={roles} />
        {roles.data?.items.length ? <RoleChoices roles={roles.data.items} /> : null}
        {created ? <p class="notice warning">{t('users.createdRolesFailed')}</p> : null}
        <ErrorNotice error={create.error} />
        <div class="actions">
          <button type="submit" disabled={create.busy}>
            {created ? t('users.giveRoles') : t('users.createButton')}
          </button>
          <a class="button secondary" href={created ? `/console/users/${encodeURIComponent(created.id)}` : '/console/users'}>
            {t('cancel')}
          </a>
        </div>
      </form>
    </Screen>
  );
}

function UserDetail({ id }: { id: string }) {
  const user = useLoad(() => get<User>(userPath(id)), [id]);
  const u = user.data;
  return (
    <Screen title={u?.email ?? t('users.user')} actions={u && canWrite() && u.id !== currentSession()?.userId ? <UserActions user={u} onChange={user.reload} /> : null}>
      <p>
        <a href="/console/users">{t('users.back')}</a>
      </p>
      <Loading loaded={user} />
      {u ? (
        <>
          <UserFacts user={u} />
          {canWrite() ? <EditUser user={u} onSaved={user.reload} /> : null}
          <Attributes user={u} onSaved={user.reload} />
          {canWrite() ? <SignInHelp user={u} /> : null}
          <RoleAssignments holder={userPath(u.id)} empty={t('users.noRoles')} key={u.id} />
          <TwoStep user={u} />
          <Identities user={u} />
          <Grants user={u} />
        </>
      ) : null}
    </Screen>
  );
}

/** Disable / enable, and delete (not offered on one's own account: the API refuses it). */
function UserActions({ user, onChange }: { user: User; onChange: () => void }) {
  const enable = useAction(async () => {
    await call('POST', `${userPath(user.id)}/enable`);
    onChange();
  });
  return (
    <>
      {user.disabled ? (
        <button type="button" class="secondary" disabled={enable.busy} onClick={() => void enable.run()}>
          {t('users.enable')}
        </button>
      ) : (
        <ConfirmButton
          label={t('users.disable')}
          question={t('users.disableQuestion', { email: user.email })}
          confirm={t('users.disableConfirm')}
          onConfirm={async () => {
            await call('POST', `${userPath(user.id)}/disable`);
            onChange();
          }}
        />
      )}
      <ConfirmButton
        danger
        label={t('users.delete')}
        question={t('users.deleteQuestion', { email: user.email })}
        onConfirm={async () => {
          await call('DELETE', userPath(user.id));
          navigate('users');
        }}
      />
      <ErrorNotice error={enable.error} />
    </>
  );
}

function UserFacts({ user }: { user: User }) {
  return (
    <>
      <h2>{t('users.details')}</h2>
      <dl class="facts">
        <dt>{t('users.id')}</dt>
        <dd class="secret">
          <code>{user.id}</code>
          <CopyButton value={user.id} label={t('users.copyId')} />
        </dd>
        <dt>{t('users.email')}</dt>
        <dd>{user.email}</dd>
        <dt>{t('users.verified')}</dt>
        <dd>{yesNo(user.emailVerified)}</dd>
        <dt>{t('users.name')}</dt>
        <dd>{user.name ?? '—'}</dd>
        <dt>{t('users.status')}</dt>
        <dd>
          <StatusBadge user={user} />
        </dd>
        <dt>{t('users.password')}</dt>
        <dd>{user.hasPassword ? t('users.passwordSet') : t('users.passwordNone')}</dd>
        <dt>{t('users.termsAccepted')}</dt>
        <dd>{formatDate(user.termsAcceptedAt)}</dd>
        <dt>{t('users.created')}</dt>
        <dd>{formatDate(user.createdAt)}</dd>
        <dt>{t('users.updated')}</dt>
        <dd>{formatDate(user.updatedAt)}</dd>
      </dl>
    </>
  );
}

/** PATCH: only what changed, so that a new address becomes unverified unless the box says otherwise. */
function EditUser({ user, onSaved }: { user: User; onSaved: () => void }) {
  const [saved, setSaved] = useState(false);
  const save = useAction(async (form: HTMLFormElement) => {
    const data = new FormData(form);
    const email = String(data.get('email') ?? '').trim();
    const name = String(data.get('name') ?? '').trim() || null;
    const emailVerified = data.get('emailVerified') === 'on';
    const patch = {
      ...(email !== user.email ? { email } : {}),
      ...(name !== user.name ? { name } : {}),
      ...(emailVerified !== user.emailVerified ? { emailVerified } : {}),
    };
    if (Object.keys(patch).length) await call('PATCH', userPath(user.id), patch);
    setSaved(true);
    onSaved();
  });
  return (
    <section>
      <h2>{t('users.edit')}</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setSaved(false);
          void save.run(event.currentTarget);
        }}
      >
        <Field label={t('users.email')}>{(props) => <input {...props} type="email" name="email" required autocomplete="off" defaultValue={user.email} />}</Field>
        <Field label={t('users.name')}>{(props) => <input {...props} type="text" name="name" autocomplete="off" defaultValue={user.name ?? ''} />}</Field>
        <label class="choice">
          <input type="checkbox" name="emailVerified" defaultChecked={user.emailVerified} />
          <span>{t('users.markVerified')}</span>
        </label>
        <ErrorNotice error={save.error} />
        <Said text={saved ? t('saved') : ''} />
        <div class="actions">
          <button type="submit" disabled={save.busy}>
            {t('save')}
          </button>
        </div>
      </form>
    </section>
  );
}

/** Custom attributes as JSON: shown to everyone, edited by those who may write (the API checks size and shape). */
function Attributes({ user, onSaved }: { user: User; onSaved: () => void }) {
  const [saved, setSaved] = useState(false);
  const [invalid, setInvalid] = useState<string | undefined>();
  const shown = JSON.stringify(user.attributes ?? {}, null, 2);
  const save = useAction(async (form: HTMLFormElement) => {
    let attributes: unknown;
    try {
      attributes = JSON.parse(String(new FormData(form).get('attributes') ?? '') || '{}');
    } catch {
      attributes = undefined;
    }
    if (!attributes || typeof attributes !== 'object' || Array.isArray(attributes)) {
      setInvalid(t('users.attributesInvalid'));
      return;
    }
    await call('PATCH', userPath(user.id), { attributes });
    setSaved(true);
    onSaved();
  });
  if (!canWrite()) {
    return (
      <section>
        <h2>{t('users.attributes')}</h2>
        <pre>{shown}</pre>
      </section>
    );
  }
  return (
    <section>
      <h2>{t('users.attributes')}</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setSaved(false);
          setInvalid(undefined);
          void save.run(event.currentTarget);
        }}
      >
        <Field label={t('users.attributesJson')} hint={t('users.attributesHint')} error={invalid}>
          {(props) => <textarea {...props} name="attributes" rows={6} spellcheck={false} autocomplete="off" defaultValue={shown} key={shown} />}
        </Field>
        <ErrorNotice error={save.error} />
        <Said text={saved ? t('saved') : ''} />
        <div class="actions">
          <button type="submit" disabled={save.busy}>
            {t('users.attributesSave')}
          </button>
        </div>
      </form>
    </section>
  );
}

/** Emails that help the person sign in, and signing them out everywhere. */
function SignInHelp({ user }: { user: User }) {
  const [said, setSaid] = useState('');
  const send = useAction(async (what: 'password-reset' | 'verification-email') => {
    setSaid('');
    await call('POST', `${userPath(user.id)}/${what}`);
    setSaid(what === 'password-reset' ? t('users.resetSent', { email: user.email }) : t('users.verificationSent', { email: user.email }));
  });
  return (
    <section>
      <h2>{t('users.signIn')}</h2>
      {user.disabled ? <p class="muted">{t('users.disabledNote')}</p> : null}
      <div class="actions">
        {user.disabled ? null : (
          <button type="button" class="secondary" disabled={send.busy} onClick={() => void send.run('password-reset')}>
            {t('users.sendReset')}
          </button>
        )}
        {user.emailVerified ? null : (
          <button type="button" class="secondary" disabled={send.busy} onClick={() => void send.run('verification-email')}>
            {t('users.sendVerification')}
          </button>
        )}
        {user.disabled ? null : (
          <ConfirmButton
            label={t('users.signOutEverywhere')}
            question={t('users.signOutQuestion', { email: user.email })}
            onConfirm={async () => {
              setSaid('');
              const { revoked } = await call<{ revoked: number }>('DELETE', `${userPath(user.id)}/sessions`);
              setSaid(t('users.signedOut', { count: revoked }));
            }}
          />
        )}
      </div>
      <ErrorNotice error={send.error} />
      <Said text={said} />
    </section>
  );
}

/** The user's second factors (never a secret); an administrator can turn them all off. */
function TwoStep({ user }: { user: User }) {
  const factors = useLoad(() => get<{ items: Factor[]; recoveryCodesLeft: number }>(`${userPath(user.id)}/factors`), [user.id]);
  const [said, setSaid] = useState('');
  return (
    <section>
      <h2>{t('users.mfa')}</h2>
      <Loading loaded={factors} />
      {factors.data && !factors.data.items.length ? <p class="muted">{t('users.mfaOff')}</p> : null}
      {factors.data?.items.length ? (
        <>
          <Table caption={t('users.mfaFactors')}>
            <thead>
              <tr>
                <th scope="col">{t('users.mfaName')}</th>
                <th scope="col">{t('users.mfaType')}</th>
                <th scope="col">{t('users.mfaAdded')}</th>
                <th scope="col">{t('users.mfaLastUsed')}</th>
              </tr>
            </thead>
            <tbody>
              {factors.data.items.map((f) => (
                <tr key={f.id}>
                  <td>{f.name || t(f.type === 'passkey' ? 'users.mfaUnnamedPasskey' : 'users.mfaUnnamed')}</td>
                  <td>{t(f.type === 'passkey' ? 'users.mfaPasskey' : 'users.mfaApp')}</td>
                  <td>{formatDate(f.createdAt)}</td>
                  <td>{formatDate(f.lastUsedAt)}</td>
                </tr>
              ))}
            </tbody>
          </Table>
          <p>{t('users.mfaRecoveryLeft', { count: factors.data.recoveryCodesLeft })}</p>
          {canWrite() ? (
            <div class="actions">
              <ConfirmButton
                danger
                label={t('users.mfaReset')}
                question={t('users.mfaResetQuestion', { email: user.email })}
                onConfirm={async () => {
                  await call('DELETE', `${userPath(user.id)}/factors`);
                  setSaid(t('users.mfaResetDone', { email: user.email }));
                  factors.reload();
                }}
              />
            </div>
          ) : null}
        </>
      ) : null}
      <Said text={said} />
    </section>
  );
}

/** The upstream accounts (Google, …) linked to the user. */
function Identities({ user }: { user: User }) {
  const identities = useLoad(() => get<{ items: Identity[] }>(`${userPath(user.id)}/identities`), [user.id]);
  return (
    <section>
      <h2>{t('users.identities')}</h2>
      <Loading loaded={identities} />
      {identities.data && !identities.data.items.length ? <p class="muted">{t('users.noIdentities')}</p> : null}
      {identities.data?.items.length ? (
        <Table caption={t('users.identities')}>
          <thead>
            <tr>
              <th scope="col">{t('users.provider')}</th>
              <th scope="col">{t('users.email')}</th>
              <th scope="col">{t('users.subject')}</th>
              <th scope="col">{t('users.linked')}</th>
              <th scope="col">{t('users.lastSignIn')}</th>
              {canWrite() ? (
                <th scope="col">
                  <span class="visually-hidden">{t('users.actions')}</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {identities.data.items.map((i) => (
              <tr key={i.id}>
                <td>{i.providerId}</td>
                <td>{i.email ?? '—'}</td>
                <td>
                  <code>{i.subject}</code>
                </td>
                <td>{formatDate(i.createdAt)}</td>
                <td>{formatDate(i.lastLoginAt)}</td>
                {canWrite() ? (
                  <td>
                    <ConfirmButton
                      label={t('users.unlink')}
                      question={t('users.unlinkQuestion', { provider: i.providerId, email: user.email })}
                      onConfirm={async () => {
                        await call('DELETE', `${userPath(user.id)}/identities/${encodeURIComponent(i.id)}`);
                        identities.reload();
                      }}
                    />
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </Table>
      ) : null}
    </section>
  );
}

/** The applications the user consented to, and with what. */
function Grants({ user }: { user: User }) {
  const grants = useLoad(() => get<{ items: Grant[] }>(`${userPath(user.id)}/grants`), [user.id]);
  return (
    <section>
      <h2>{t('users.grants')}</h2>
      <Loading loaded={grants} />
      {grants.data && !grants.data.items.length ? <p class="muted">{t('users.noGrants')}</p> : null}
      {grants.data?.items.length ? (
        <Table caption={t('users.grants')}>
          <thead>
            <tr>
              <th scope="col">{t('users.application')}</th>
              <th scope="col">{t('users.scopes')}</th>
              <th scope="col">{t('users.granted')}</th>
              <th scope="col">{t('users.expires')}</th>
              {canWrite() ? (
                <th scope="col">
                  <span class="visually-hidden">{t('users.actions')}</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {grants.data.items.map((g) => (
              <tr key={g.grantId}>
                <td>
                  <a href={`/console/applications/${encodeURIComponent(g.clientId)}`}>{g.clientName ?? g.clientId}</a>
                </td>
                <td class="grant-scopes">
                  <code>{g.scopes.join(' ')}</code>
                  {Object.entries(g.apis).map(([api, scopes]) => (
                    <div key={api}>
                      <span class="muted small">{api}</span> <code>{scopes.join(' ')}</code>
                    </div>
                  ))}
                </td>
                <td>{formatDate(g.createdAt)}</td>
                <td>{g.expiresAt ? formatDate(g.expiresAt) : t('users.never')}</td>
                {canWrite() ? (
                  <td>
                    <ConfirmButton
                      label={t('users.revoke')}
                      question={t('users.revokeQuestion', { app: g.clientName ?? g.clientId, email: user.email })}
                      onConfirm={async () => {
                        await call('DELETE', `${userPath(user.id)}/grants/${encodeURIComponent(g.grantId)}`);
                        grants.reload();
                      }}
                    />
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </Table>
      ) : null}
    </section>
  );
}
