import { get, type Page } from '../api.ts';
import { formatNumber, t } from '../i18n.ts';
import { Loading, Screen, Table, useLoad } from '../ui.tsx';

interface Day {
  date: string;
  succeeded: number;
  failed: number;
}

const COUNTED = [
  { key: 'applications', path: '/clients', link: 'applications' },
  { key: 'apis', path: '/resources', link: 'apis' },
  { key: 'users', path: '/users', link: 'users' },
  { key: 'roles', path: '/roles', link: 'roles' },
] as const;

/** Counts of what is registered, and sign-ins over the last two weeks. */
export function Overview() {
  const counts = useLoad(() => Promise.all(COUNTED.map((c) => get<Page<unknown>>(`${c.path}?limit=1`).then((p) => p.total))), []);
  const signIns = useLoad(() => get<{ days: Day[] }>('/stats/sign-ins?days=14'), []);
  return (
    <Screen title={t('overview.title')}>
      <Loading loaded={counts} />
      {counts.data ? (
        <ul class="counts">
          {COUNTED.map((c, i) => (
            <li key={c.key}>
              <a href={`/console/${c.link}`}>
                <span class="count">{formatNumber(counts.data![i] ?? 0)}</span>
                <span>{t(`overview.${c.key}`)}</span>
              </a>
            </li>
          ))}
        </ul>
      ) : null}
      <h2>{t('overview.signIns')}</h2>
      <Loading loaded={signIns} />
      {signIns.data ? <SignInChart days={signIns.data.days} /> : null}
    </Screen>
  );
}

/** Bars per day (succeeded above, failed below), with the same numbers as a table for screen readers and keyboards. */
function SignInChart({ days }: { days: Day[] }) {
  const max = Math.max(1, ...days.map((d) => Math.max(d.succeeded, d.failed)));
  const width = 100 / days.length;
  const label = (date: string) => new Intl.DateTimeFormat(document.documentElement.lang, { month: 'numeric', day: 'numeric', timeZone: 'UTC' }).format(new Date(`${date}T00:00:00Z`));
  return (
    <figure class="chart">
      <svg viewBox="0 0 100 60" preserveAspectRatio="none" aria-hidden="true" focusable="false">
        {days.map((d, i) => (
          <g key={d.date}>
            <rect class="ok" x={i * width + width * 0.15} width={width * 0.7} y={30 - (28 * d.succeeded) / max} height={(28 * d.succeeded) / max} />
            <rect class="failed" x={i * width + width * 0.15} width={width * 0.7} y={30} height={(28 * d.failed) / max} />
          </g>
        ))}
        <line x1="0" x2="100" y1="30" y2="30" class="axis" />
      </svg>
      <ol class="chart-days" aria-hidden="true">
        {days.map((d) => (
          <li key={d.date}>{label(d.date)}</li>
        ))}
      </ol>
      <figcaption>
        <span class="key ok">{t('overview.succeeded')}</span> <span class="key failed">{t('overview.failed')}</span>
      </figcaption>
      <details>
        <summary>{t('overview.asTable')}</summary>
        <Table caption={t('overview.signIns')}>
          <thead>
            <tr>
              <th scope="col">{t('overview.day')}</th>
              <th scope="col">{t('overview.succeeded')}</th>
              <th scope="col">{t('overview.failed')}</th>
            </tr>
          </thead>
          <tbody>
            {days.map((d) => (
              <tr key={d.date}>
                <th scope="row">{label(d.date)}</th>
                <td>{formatNumber(d.succeeded)}</td>
                <td>{formatNumber(d.failed)}</td>
              </tr>
            ))}
          </tbody>
        </Table>
      </details>
    </figure>
  );
}
