import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';
import { ApiError, type Page } from './api.ts';
import { currentSession } from './auth.ts';
import { t } from './i18n.ts';

/** Whether the signed-in admin may change things (`admin`), or only read (`admin:read`). */
export const canWrite = () => currentSession()?.scopes.has('admin') ?? false;

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Data for a screen: loaded when the keys change, reloadable after a change. */
export function useLoad<T>(load: () => Promise<T>, keys: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...keys, round]);
  return { ...state, reload: useCallback(() => setRound((r) => r + 1), []) };
}

/** The words for an error: the API's own description, or a generic message. */
function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return t('error.forbidden');
    if (error.status === 503) return t('error.unavailable');
    return error.message;
  }
  return t('error.generic');
}

export function ErrorNotice({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="notice error" role="alert">
      {errorText(error)}
    </p>
  );
}

/** A screen: its heading (focused when the screen opens, so that screen readers announce it) and its actions. */
export function Screen({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · ${t('title')}`;
    heading.current?.focus();
  }, [title]);
  return (
    <section class="screen" aria-labelledby="screen-title">
      <div class="screen-head">
        <h1 id="screen-title" tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {actions ? <div class="actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

export function Loading({ loaded }: { loaded: Loaded<unknown> }) {
  if (loaded.error) return <ErrorNotice error={loaded.error} />;
  if (loaded.loading && loaded.data === undefined)
    return (
      <p class="muted" role="status">
        {t('loading')}
      </p>
    );
  return null;
}

/** A labelled form field: the label names the control; a hint and an error are tied to it. */
export function Field({ label, hint, error, children }: { label: string; hint?: string | undefined; error?: string | undefined; children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ComponentChildren }) {
  const id = useId();
  const described = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {hint ? (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {children({ id, ...(described ? { 'aria-describedby': described } : {}), ...(error ? { 'aria-invalid': true } : {}) })}
      {error ? (
        <p class="field-error" id={`${id}-error`}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

/** Copies a value to the clipboard and says so (for screen readers too). */
export function CopyButton({ value, label }: { value: string; label: string }) {
  const [done, setDone] = useState(false);
  return (
    <span class="copy">
      <button
        type="button"
        class="secondary small"
        onClick={async () => {
          await navigator.clipboard.writeText(value).catch(() => {});
          setDone(true);
        }}
      >
        {label}
      </button>
      <span role="status" class="muted small">
        {done ? t('copied') : ''}
      </span>
    </span>
  );
}

/** A button whose action asks first, in a modal dialog (Escape or Cancel keeps everything as it is). */
export function ConfirmButton({ label, question, confirm, danger, onConfirm }: { label: string; question: string; confirm?: string; danger?: boolean; onConfirm: () => Promise<unknown> | unknown }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const id = useId();
  return (
    <>
      <button type="button" class={danger ? 'danger' : 'secondary'} onClick={() => dialog.current?.showModal()}>
        {label}
      </button>
      <dialog ref={dialog} aria-labelledby={`${id}-q`}>
        <p id={`${id}-q`}>{question}</p>
        <ErrorNotice error={error} />
        <div class="actions">
          <button
            type="button"
            class={danger ? 'danger' : ''}
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(undefined);
              try {
                await onConfirm();
                dialog.current?.close();
              } catch (err) {
                setError(err);
              } finally {
                setBusy(false);
              }
            }}
          >
            {confirm ?? label}
          </button>
          <button type="button" class="secondary" onClick={() => dialog.current?.close()}>
            {t('cancel')}
          </button>
        </div>
      </dialog>
    </>
  );
}

/** Runs a change, remembering its error and whether it is under way, for a form's submit. */
export function useAction<A extends unknown[]>(action: (...args: A) => Promise<unknown>) {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const run = async (...args: A) => {
    setBusy(true);
    setError(undefined);
    try {
      await action(...args);
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { run, error, busy };
}

/** Paging through a list: "previous" and "next", and where we are. */
export function Pager({ page, onOffset }: { page: Page<unknown>; onOffset: (offset: number) => void }) {
  if (page.total <= page.limit && page.offset === 0) return null;
  const from = page.total ? page.offset + 1 : 0;
  const to = Math.min(page.offset + page.items.length, page.total);
  return (
    <nav class="pager" aria-label={t('pager.label')}>
      <button type="button" class="secondary" disabled={page.offset === 0} onClick={() => onOffset(Math.max(0, page.offset - page.limit))}>
        {t('pager.previous')}
      </button>
      <span>{t('pager.range', { from, to, total: page.total })}</span>
      <button type="button" class="secondary" disabled={to >= page.total} onClick={() => onOffset(page.offset + page.limit)}>
        {t('pager.next')}
      </button>
    </nav>
  );
}

/** A table that scrolls sideways on a narrow screen rather than the whole page. */
export function Table({ caption, children }: { caption: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable with the keyboard
    <section class="table-wrap" tabIndex={0} aria-label={caption}>
      <table>
        <caption class="visually-hidden">{caption}</caption>
        {children}
      </table>
    </section>
  );
}

/** A form's values as strings, by field name. */
export const formValues = (event: JSX.TargetedEvent<HTMLFormElement>) => Object.fromEntries([...new FormData(event.currentTarget).entries()].map(([k, v]) => [k, String(v)]));

/** Lines of a textarea, trimmed, without the empty ones. */
export const lines = (text: string | undefined) => (text ?? '').split(/[\n,]/).map((l) => l.trim()).filter(Boolean);
