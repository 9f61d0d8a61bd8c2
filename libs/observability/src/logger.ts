import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

/**
 * Paths that may carry secrets anywhere in a log line. CMS authenticates CDR posts with ?token= in the URL,
 * so request URLs are also scrubbed by `scrubUrl` before they are logged.
 */
export const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  '*.password',
  '*.token',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'config.ingest.token',
  'config.api.token',
  'config.api.tokens[*].token',
  'config.cms.nodes[*].password',
  'config.redis.url',
  'config.database.url',
];

const SECRET_PARAMS = /([?&](?:token|authToken|password)=)[^&#]*/gi;

/** Replaces secret query parameter values in a URL with "[Redacted]". */
export function scrubUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[Redacted]');
}

/** Removes the password from a connection URL such as postgres://user:secret@host/db. */
export function scrubConnectionUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '[Redacted]';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}

interface SerializableRequest {
  method?: string;
  url?: string;
  ip?: string;
  id?: string | number;
  headers?: Record<string, unknown>;
}

export const serializers = {
  req(req: SerializableRequest) {
    return {
      id: req.id,
      method: req.method,
      url: req.url ? scrubUrl(req.url) : req.url,
      remoteAddress: req.ip,
      userAgent: req.headers?.['user-agent'],
    };
  },
};

/** `destination` defaults to stdout; tests pass a stream to read what was logged. */
export function createLogger(
  service: string,
  level: string = 'info',
  options: LoggerOptions = {},
  destination?: DestinationStream,
): Logger {
  const logOptions: LoggerOptions = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    serializers,
    ...options,
  };
  return destination ? pino(logOptions, destination) : pino(logOptions);
}

export type { Logger };
