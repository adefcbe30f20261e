import { pino, type Logger, type LoggerOptions } from 'pino';

/** Query parameters whose values are credentials and must never be written to a log line. */
const SECRET_QUERY_PARAMS = /^(code|code_verifier|access_token|refresh_token|id_token|id_token_hint|client_secret|client_assertion|token|logout_hint|password|state|nonce)$/i;

const REDACTED = '[REDACTED]';

/** Strips credential values from a request URL while keeping its shape readable. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let changed = false;
  for (const key of new Set(params.keys())) {
    if (SECRET_QUERY_PARAMS.test(key)) {
      params.set(key, REDACTED);
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString()}` : url;
}

interface SerializableRequest {
  method: string;
  url: string;
  ip?: string;
  headers?: Record<string, unknown>;
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    // Any object logged with one of these keys has the value replaced, wherever it appears.
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'password',
        '*.password',
        'client_secret',
        '*.client_secret',
        'clientSecret',
        '*.clientSecret',
        'token',
        '*.token',
        'access_token',
        '*.access_token',
        'refresh_token',
        '*.refresh_token',
        'id_token',
        '*.id_token',
        'code',
        '*.code',
        'headers.authorization',
        'headers.cookie',
      ],
      censor: REDACTED,
    },
    serializers: {
      req(req: SerializableRequest) {
        return {
          method: req.method,
          url: redactUrl(req.url),
          remoteAddress: req.ip,
          userAgent: req.headers?.['user-agent'],
        };
      },
    },
  };
}

export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
}
