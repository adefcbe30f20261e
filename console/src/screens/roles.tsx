import { useState } from 'preact/hooks';
import { call, get, type Page, query } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { formatDate, t } from '../i18n.ts';
import { currentQuery, navigate } from '../router.ts';
import { canWrite, ConfirmButton, ErrorNotice, Field, formValues, Loading, Pager, Screen, Table, useAction, useLoad } from '../ui.tsx';

type Permissions = Record<string, string[]>;

interface Role {
  id: string;
  name: string;
  description: string | null;
  permissions: Permissions;
  builtIn: boolean;
  /** People with this role must sign in with a second factor. */
  requireMfa: boolean;
  createdAt: string;
  updatedAt: string;
}

interface Api {
  id: string;
  identifier: string;
  name: string | null;
  scopes: string[];
  scopeDescriptions: Record<string, string>;
}

const LIMIT = 50;
const rolePath = (name: string) => `/roles/${encodeURIComponent(name)}`;
/** A role's page is named by the role's name; a role called "new" by its id (the form has that address). */
const roleHref = (role: Role) => `/console/roles/${encodeURIComponent(role.name === 'new' ? role.id : role.name)}`;
const scopeCount = (permissions: Permissions) => Object.values(permissions).reduce((n, scopes) => n + scopes.length, 0);

/** The built-in roles' descriptions in the page's language (the API gives them in English). */
const builtInDescription: Record<string, () => string> = {
  'idp-admin': () => t('roles.idpAdmin'),
  'idp-viewer': () => t('roles.idpViewer'),
};
export const describeRole = (role: Pick<Role, 'name' | 'description' | 'builtIn'>) => (role.builtIn ? builtInDescription[role.name]?.() : undefined) ?? role.description;

/** A segment of the address as it was before encoding (as it is, when it was not encoded properly). */
export function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `roles` (the list), `roles/new` (a form), `roles/<name>` (one role). */
export function Roles({ path }: ScreenProps) {
  const [first] = path;
  if (!first) return <RoleList />;
  if (first === 'new' && canWrite()) return <CreateRole />;
  return <RoleDetail name={decoded(first)} />;
}

function BuiltInBadge() {
  return <span class="badge">{t('roles.builtIn')}</span>;
}

function RoleList() {
  const offset = Number(currentQuery().get('offset')) || 0;
  const roles = useLoad(() => get<Page<Role>>(`/roles${query({ limit: LIMIT, offset })}`), [offset]);
  return (
    <Screen
      title={t('roles.title')}
      actions={
        canWrite() ? (
          <a class="button" href="/console/roles/new">
            {t('roles.create')}
          </a>
        ) : null
      }
    >
      <p class="muted">{t('roles.intro')}</p>
      <Loading loaded={roles} />
      {roles.data ? (
        <>
          <Table caption={t('roles.listCaption')}>
            <thead>
              <tr>
                <th scope="col">{t('roles.name')}</th>
                <th scope="col">{t('roles.description')}</th>
                <th scope="col">{t('roles.permissions')}</th>
              </tr>
            </thead>
            <tbody>
              {roles.data.items.map((r) => (
                <tr key={r.id}>
                  <td>
                    <a href={roleHref(r)}>{r.name}</a> {r.builtIn ? <BuiltInBadge /> : null}
                  </td>
                  <td>{describeRole(r) ?? '—'}</td>
                  <td>{t('roles.scopeCount', { count: scopeCount(r.permissions) })}</td>
                </tr>
              ))}
            </tbody>
          </Table>
          <Pager page={roles.data} onOffset={(next) => navigate(`roles${query({ offset: next || undefined })}`)} />
        </>
      ) : null}
    </Screen>
  );
}

/** Every registered API, and any other API a role already grants scopes of (so that saving keeps them). */
function useApis(current: Permissions) {
  return useLoad(async () => {
    const registered = (await get<Page<Api>>('/resources?limit=200')).items;
    const others = Object.keys(current)
      .filter((identifier) => !registered.some((a) => a.identifier === identifier))
      .map((identifier): Api => ({ id: identifier, identifier, name: null, scopes: current[identifier] ?? [], scopeDescriptions: {} }));
    return [...registered, ...others];
  }, []);
}

/** Checkboxes per API and scope; what is ticked is read back with `chosen`. */
function PermissionChoices({ current }: { current: Permissions }) {
  const apis = useApis(current);
  return (
    <fieldset>
      <legend>{t('roles.permissions')}</legend>
      <p class="hint">{t('roles.permissionsHint')}</p>
      <Loading loaded={apis} />
      {apis.data && !apis.data.length ? (
        <p class="muted">
          {t('roles.noApis')} <a href="/console/apis">{t('roles.toApis')}</a>
        </p>
      ) : null}
      {apis.data?.map((api) => (
        <fieldset key={api.id}>
          <legend>{api.name ?? api.identifier}</legend>
          {api.name ? <p class="hint mono">{api.identifier}</p> : null}
          {api.scopes.length ? null : <p class="muted small">{t('roles.noScopes')}</p>}
          {[...new Set([...api.scopes, ...(current[api.identifier] ?? [])])].map((scope) => (
            <label key={scope} class="choice">
              <input type="checkbox" name="scope" value={JSON.stringify([api.identifier, scope])} defaultChecked={current[api.identifier]?.includes(scope) ?? false} />
              <span>
                <code>{scope}</code>
                {api.scopeDescriptions[scope] ? <span class="muted small"> — {api.scopeDescriptions[scope]}</span> : null}
              </span>
            </label>
          ))}
        </fieldset>
      ))}
    </fieldset>
  );
}

function chosen(form: HTMLFormElement): Permissions {
  const out: Permissions = {};
  for (const value of new FormData(form).getAll('scope')) {
    const [api, scope] = JSON.parse(String(value)) as [string, string];
    out[api] = [...(out[api] ?? []), scope];
  }
  return out;
}

const text = (form: HTMLFormElement, name: string) => String(new FormData(form).get(name) ?? '').trim();

/** Whether the role requires a second factor at sign-in: a checkbox, read back with `new FormData(form).has('requireMfa')`. */
function RequireMfaChoice({ checked }: { checked: boolean }) {
  return (
    <div class="field">
      <label class="choice" for="role-requireMfa">
        <input type="checkbox" id="role-requireMfa" name="requireMfa" defaultChecked={checked} aria-describedby="role-requireMfa-hint" />
        <span>{t('roles.requireMfaLabel')}</span>
      </label>
      <p class="hint checkbox-hint" id="role-requireMfa-hint">
        {t('roles.requireMfaHint')}
      </p>
    </div>
  );
}

function CreateRole() {
  const create = useAction(async (form: HTMLFormElement) => {
    const description = text(form, 'description');
    const role = await call<Role>('POST', '/roles', { name: text(form, 'name'), ...(description ? { description } : {}), permissions: chosen(form), requireMfa: new FormData(form).has('requireMfa') });
    navigate(roleHref(role));
  });
  return (
    <Screen title={t('roles.createTitle')}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void create.run(event.currentTarget);
        }}
      >
        <Field label={t('roles.name')} hint={t('roles.nameHint')}>
          {(props) => <input {...props} type="text" name="name" required maxLength={64} autocomplete="off" />}
        </Field>
        <Field label={t('roles.descriptionOptional')}>{(props) => <textarea {...props} name="description" maxLength={500} />}</Field>
        <RequireMfaChoice checked={false} />
        <PermissionChoices current={{}} />
        <ErrorNotice error={create.error} />
        <div class="actions">
          <button type="submit" disabled={create.busy}>
            {t('roles.createButton')}
          </button>
          <a class="button secondary" href="/console/roles">
            {t('cancel')}
          </a>
        </div>
      </form>
    </Screen>
  );
}

function RoleDetail({ name }: { name: string }) {
  const role = useLoad(() => get<Role>(rolePath(name)), [name]);
  const r = role.data;
  const editable = Boolean(r && canWrite() && !r.builtIn);
  return (
    <Screen
      title={r?.name ?? t('roles.role')}
      actions={
        r && editable ? (
          <ConfirmButton
            danger
            label={t('roles.delete')}
            question={t('roles.deleteQuestion', { name: r.name })}
            onConfirm={async () => {
              await call('DELETE', rolePath(r.id));
              navigate('roles');
            }}
          />
        ) : null
      }
    >
      <p>
        <a href="/console/roles">{t('roles.back')}</a>
      </p>
      <Loading loaded={role} />
      {r ? (
        <>
          {r.builtIn ? <p class="notice">{t('roles.builtInNotice')}</p> : null}
          <RoleFacts role={r} />
          {editable ? <EditRole role={r} onSaved={role.reload} /> : <PermissionList permissions={r.permissions} />}
          {/* A built-in role's name and permissions are fixed; whether it requires a second factor is the admin's to choose. */}
          {r.builtIn && canWrite() ? <EditRole role={r} onSaved={role.reload} /> : null}
        </>
      ) : null}
    </Screen>
  );
}

function RoleFacts({ role }: { role: Role }) {
  return (
    <>
      <h2>{t('roles.details')}</h2>
      <dl class="facts">
        <dt>{t('roles.name')}</dt>
        <dd>
          {role.name} {role.builtIn ? <BuiltInBadge /> : null}
        </dd>
        <dt>{t('roles.description')}</dt>
        <dd>{describeRole(role) ?? '—'}</dd>
        <dt>{t('roles.requireMfa')}</dt>
        <dd>{role.requireMfa ? t('roles.mfaRequired') : t('roles.mfaNotRequired')}</dd>
        <dt>{t('roles.id')}</dt>
        <dd>
          <code>{role.id}</code>
        </dd>
        <dt>{t('roles.created')}</dt>
        <dd>{formatDate(role.createdAt)}</dd>
        <dt>{t('roles.updated')}</dt>
        <dd>{formatDate(role.updatedAt)}</dd>
      </dl>
    </>
  );
}

/** The permissions, read only (a viewer, or a built-in role). */
function PermissionList({ permissions }: { permissions: Permissions }) {
  const entries = Object.entries(permissions);
  return (
    <>
      <h2>{t('roles.permissions')}</h2>
      {entries.length ? (
        <Table caption={t('roles.permissions')}>
          <thead>
            <tr>
              <th scope="col">{t('roles.api')}</th>
              <th scope="col">{t('roles.scopes')}</th>
            </tr>
          </thead>
          <tbody>
            {entries.map(([api, scopes]) => (
              <tr key={api}>
                <td>
                  <code>{api}</code>
                </td>
                <td>
                  <code>{scopes.join(' ')}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </Table>
      ) : (
        <p class="muted">{t('roles.noPermissions')}</p>
      )}
    </>
  );
}

/** The form of a role: its description, permissions and second-factor requirement; a built-in role's second-factor requirement alone. */
function EditRole({ role, onSaved }: { role: Role; onSaved: () => void }) {
  const [saved, setSaved] = useState(false);
  const save = useAction(async (form: HTMLFormElement) => {
    const requireMfa = new FormData(form).has('requireMfa');
    await call('PATCH', rolePath(role.id), role.builtIn ? { requireMfa } : { description: text(form, 'description') || null, permissions: chosen(form), requireMfa });
    setSaved(true);
    onSaved();
  });
  return (
    <section>
      <h2>{t('roles.edit')}</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setSaved(false);
          void save.run(event.currentTarget);
        }}
      >
        {role.builtIn ? null : <Field label={t('roles.description')}>{(props) => <textarea {...props} name="description" maxLength={500} defaultValue={role.description ?? ''} />}</Field>}
        <RequireMfaChoice checked={role.requireMfa} />
        {role.builtIn ? null : <PermissionChoices current={role.permissions} />}
        <ErrorNotice error={save.error} />
        <div role="status">{saved ? <p class="notice ok">{t('saved')}</p> : null}</div>
        <div class="actions">
          <button type="submit" disabled={save.busy}>
            {t('save')}
          </button>
        </div>
      </form>
    </section>
  );
}

/**
 * The roles a user or a machine client holds (`holder`: `/users/<id>` or `/clients/<id>` of the
 * admin API), with Remove and a role to add for an admin.
 */
export function RoleAssignments({ holder, empty }: { holder: string; empty: string }) {
  const held = useLoad(() => get<{ items: Role[] }>(`${holder}/roles`), [holder]);
  const remove = useAction(async (role: string) => {
    await call('DELETE', `${holder}/roles/${encodeURIComponent(role)}`);
    held.reload();
  });
  return (
    <section>
      <h2>{t('users.roles')}</h2>
      <Loading loaded={held} />
      {held.data && !held.data.items.length ? <p class="muted">{empty}</p> : null}
      {held.data?.items.length ? (
        <Table caption={t('users.roles')}>
          <thead>
            <tr>
              <th scope="col">{t('users.roleName')}</th>
              <th scope="col">{t('users.roleDescription')}</th>
              {canWrite() ? (
                <th scope="col">
                  <span class="visually-hidden">{t('users.actions')}</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {held.data.items.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={roleHref(r)}>{r.name}</a>
                </td>
                <td>{describeRole(r) ?? '—'}</td>
                {canWrite() ? (
                  <td>
                    <button type="button" class="secondary small" disabled={remove.busy} aria-label={t('users.removeRole', { role: r.name })} onClick={() => void remove.run(r.name)}>
                      {t('users.remove')}
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </Table>
      ) : null}
      <ErrorNotice error={remove.error} />
      {canWrite() && held.data ? <AddRole holder={holder} held={held.data.items} onAdded={held.reload} /> : null}
    </section>
  );
}

function AddRole({ holder, held, onAdded }: { holder: string; held: Role[]; onAdded: () => void }) {
  const roles = useLoad(() => get<Page<Role>>('/roles?limit=200'), []);
  const add = useAction(async (role: string) => {
    await call('PUT', `${holder}/roles/${encodeURIComponent(role)}`);
    onAdded();
  });
  const choices = roles.data?.items.filter((r) => !held.some((h) => h.id === r.id)) ?? [];
  if (!choices.length) return <Loading loaded={roles} />;
  return (
    <form
      class="filters users-inline"
      onSubmit={(event) => {
        event.preventDefault();
        const role = formValues(event).role;
        if (role) void add.run(role);
      }}
    >
      <Field label={t('users.roleToAdd')}>
        {(props) => (
          <select {...props} name="role" required>
            {choices.map((r) => (
              <option key={r.id} value={r.name}>
                {r.name}
              </option>
            ))}
          </select>
        )}
      </Field>
      <button type="submit" class="secondary" disabled={add.busy}>
        {t('users.addRole')}
      </button>
      <ErrorNotice error={add.error} />
    </form>
  );
}
