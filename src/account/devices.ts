import { MODEL, type ArtifactStore } from '../artifacts/store.ts';

/** What the account page shows of where a browser session is used from. */
export interface DeviceSeen {
  /** The User-Agent header, cut to a bounded length. */
  userAgent: string | null;
  ip: string | null;
  /** When the session was last used here (ms since the epoch). */
  lastSeenAt: number;
}

/** A new write of a session's last-seen time waits at least this long (per process). */
const SEEN_EVERY_MS = 60_000;
/** The in-process memory of recent writes is forgotten past this many sessions. */
const REMEMBERED = 10_000;

/**
 * Which browser and address each browser session is used from, for the account page's list of
 * sessions. Kept as an artifact of its own per session (by the session's uid, which stays the
 * same while the provider rotates the session's id), expiring like the session; never tied to an
 * account in its columns, so that nothing but the session's owner finds it. Written at every
 * sign-in (from another browser or address, or a minute after the last write), and when the
 * session is used again (at most once a minute per process).
 */
export function createSessionDevices(artifacts: Pick<ArtifactStore, 'save' | 'findMany' | 'destroyMany'>, opts: { ttlSeconds: number }) {
  /** What this process last wrote per session, and when. */
  const written = new Map<string, DeviceSeen>();

  /**
   * Writes unless this process wrote for the session less than a minute ago: whatever changed
   * (`anyChange`), or the same browser and address (a sign-in's last step after its first).
   */
  async function write(uid: string, info: { userAgent?: string | undefined; ip?: string | undefined }, now: number, anyChange: boolean) {
    const payload: DeviceSeen = { userAgent: info.userAgent?.slice(0, 512) || null, ip: info.ip?.slice(0, 64) || null, lastSeenAt: now };
    const last = written.get(uid);
    if (last && now - last.lastSeenAt < SEEN_EVERY_MS && (anyChange || (last.userAgent === payload.userAgent && last.ip === payload.ip))) return;
    if (written.size >= REMEMBERED) written.clear();
    written.set(uid, payload);
    await artifacts.save(MODEL.sessionDevice, uid, { ...payload }, opts.ttlSeconds);
  }

  return {
    /** A browser session just signed someone in (or in again). */
    signedIn: (uid: string, info: { userAgent?: string | undefined; ip?: string | undefined }) => write(uid, info, Date.now(), false),

    /** The session was used again (an app's sign-in, the account page). */
    seen: (uid: string, info: { userAgent?: string | undefined; ip?: string | undefined }) => write(uid, info, Date.now(), true),

    /** What is known of these sessions, by uid. */
    async of(uids: readonly string[]): Promise<Map<string, DeviceSeen>> {
      const rows = await artifacts.findMany(MODEL.sessionDevice, uids);
      return new Map(rows.filter((r) => !r.expiresAt || r.expiresAt.getTime() > Date.now()).map((r) => [r.id, JSON.parse(r.payload) as DeviceSeen]));
    },

    /** The sessions ended: what was kept of them goes too. */
    async forget(uids: readonly string[]): Promise<void> {
      for (const uid of uids) written.delete(uid);
      await artifacts.destroyMany(MODEL.sessionDevice, uids);
    },
  };
}

export type SessionDevices = ReturnType<typeof createSessionDevices>;

/** A browser and the system it runs on, read from a User-Agent header (null when unknown). */
export interface Browser {
  browser: string | null;
  os: string | null;
}

const BROWSERS: readonly [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
  [/\b(?:OPR|OPT)\/(\d+)/, 'Opera'],
  [/\bSamsungBrowser\/(\d+)/, 'Samsung Internet'],
  [/\bWhale\/(\d+)/, 'Whale'],
  [/\b(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
  [/\bCriOS\/(\d+)/, 'Chrome'],
  [/\bChromium\/(\d+)/, 'Chromium'],
  [/\b(?:Headless)?Chrome\/(\d+)/, 'Chrome'],
  [/\bVersion\/(\d+)[\d.]*(?: Mobile\/\S+)? Safari\//, 'Safari'],
];

const SYSTEMS: readonly [RegExp, string][] = [
  [/\biPhone\b/, 'iPhone'],
  [/\biPad\b/, 'iPad'],
  [/\bAndroid\b/, 'Android'],
  [/\bWindows NT\b/, 'Windows'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
];

/** "Chrome 131" and "Windows", say: a short, readable form of a User-Agent header. */
export function describeUserAgent(userAgent: string | null | undefined): Browser {
  const ua = (userAgent ?? '').slice(0, 512);
  let browser: string | null = null;
  for (const [pattern, name] of BROWSERS) {
    const m = pattern.exec(ua);
    if (m) {
      browser = `${name} ${m[1]}`;
      break;
    }
  }
  const os = SYSTEMS.find(([pattern]) => pattern.test(ua))?.[1] ?? null;
  return { browser, os };
}
