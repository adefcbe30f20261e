import { useState } from 'preact/hooks';
import { ApiError, call, get } from '../api.ts';
import type { ScreenProps } from '../app.tsx';
import { formatDate, t } from '../i18n.ts';
import { canWrite, ConfirmButton, Loading, Screen, Table, useLoad } from '../ui.tsx';
import { formatDuration, loadSettings } from './settings.tsx';

/** A signing key as the admin API shows it (GET /keys): never private material. */
interface SigningKey {
  kid: string;
  alg: string;
  state: string;
  createdAt: string;
  activatesAt: string | null;
  retiredAt: string | null;
  removeAfter: string | null;
}

const STATES: Record<string, string> = { next: 'keys.state.next', active: 'keys.state.active', retired: 'keys.state.retired' };
function stateName(state: string): string {
  const key = STATES[state];
  return key ? t(key) : state;
}

export function SigningKeys(_props: ScreenProps) {
  const keys = useLoad(() => get<{ items: SigningKey[] }>('/keys'), []);
  const settings = useLoad(loadSettings, []);
  const [started, setStarted] = useState<string | null>(null);
  const items = [...(keys.data?.items ?? [])].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const pending = items.find((k) => k.state === 'next');

  const rotate = async () => {
    try {
      const created = await call<{ items: SigningKey[] }>('POST', '/keys/rotate');
      setStarted(created.items[0]?.activatesAt ?? null);
      keys.reload();
    } catch (err) {
      // A rotation under way: say so in the console's words, with what to do.
      if (err instanceof ApiError && err.status === 409) throw new ApiError(409, err.code, t('keys.underWay.refused'));
      throw err;
    }
  };
  const period = settings.data ? formatDuration(settings.data.keys.prepublicationSeconds) : undefined;
  const actions = canWrite() ? (
    <ConfirmButton
      label={t('keys.rotate')}
      question={period ? t('keys.rotate.question', { period }) : t('keys.rotate.questionNoPeriod')}
      confirm={t('keys.rotate.confirm')}
      onConfirm={rotate}
    />
  ) : null;

  return (
    <Screen title={t('keys.title')} actions={actions}>
      <p class="muted">{t('keys.intro')}</p>
      <p role="status" class={started ? 'notice ok' : 'visually-hidden'}>
        {started ? t('keys.started', { time: formatDate(started) }) : ''}
      </p>
      {pending && !started ? <p class="notice warning">{t('keys.underWay', { time: formatDate(pending.activatesAt) })}</p> : null}
      <Loading loaded={keys} />
      {keys.data ? (
        <div class="wide">
          <KeyTable keys={items} />
        </div>
      ) : null}
    </Screen>
  );
}

function KeyTable({ keys }: { keys: SigningKey[] }) {
  return (
    <Table caption={t('keys.caption')}>
      <thead>
        <tr>
          <th scope="col">{t('keys.kid')}</th>
          <th scope="col">{t('keys.alg')}</th>
          <th scope="col">{t('keys.state')}</th>
          <th scope="col">{t('keys.created')}</th>
          <th scope="col">{t('keys.activates')}</th>
          <th scope="col">{t('keys.retired')}</th>
          <th scope="col">{t('keys.removeAfter')}</th>
        </tr>
      </thead>
      <tbody>
        {keys.map((k) => (
          <tr key={k.kid}>
            <td class="nowrap">
              <code>{k.kid}</code>
            </td>
            <td>{k.alg}</td>
            <td class="nowrap">
              <span class="badge">{stateName(k.state)}</span>
            </td>
            <td class="nowrap">{formatDate(k.createdAt)}</td>
            <td class="nowrap">{formatDate(k.activatesAt)}</td>
            <td class="nowrap">{formatDate(k.retiredAt)}</td>
            <td class="nowrap">{formatDate(k.removeAfter)}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}
