import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/** Query parameters whose values are credentials and must never be written to a log line. */
const SECRET_QUERY_PARAMS = /^(code|code_verifier|access_token|refresh_token|id_token|id_token_hint|client_secret|client_assertion|token|logout_hint|password|state|nonce)$/i;

const REDACTED = '[REDACTED]';

/** Masks credential values in a request URL while keeping its shape readable. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      const key = eq === -1 ? part : part.slice(0, eq);
      let name = key;
      try {
        name = decodeURIComponent(key.replace(/\+/g, ' '));
      } catch {
        // A malformed escape: judge the raw key.
      }
      return SECRET_QUERY_PARAMS.test(name) ? `${key}=${REDACTED}` : part;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

interface SerializableRequest {
  method: string;
  url: string;
  ip?: string;
  headers?: Record<string, unknown>;
}

function loggerOptions(level: string): LoggerOptions {
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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}
