import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

/**
 * Paths that may carry secrets anywhere in a log line. CMS authenticates CDR posts with ?token= in the URL,
 * so request URLs are also scrubbed by `scrubUrl` before they are logged, and every line is scrubbed once more
 * by `scrubLogLine` as it is written.
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
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'config.ingest.token',
  'config.api.token',
  'config.api.tokens[*].token',
  'config.cms.nodes[*].password',
  'config.redis.url',
  'config.database.url',
];

/**
 * Names that say "credential": query parameters (?token=, ?access_token=, ?api_key=, ...), headers
 * (Authorization, Cookie, X-API-Key, ...) and log fields alike. Compared without case and without separators
 * ("X-Api-Key", "api_key" and "apiKey" are one name), so a spelling nobody listed still counts. Names that only
 * mention a credential ("tokenName", the auth hook's safe label) do not end in one and are kept.
 */
const SECRET_NAMES = new Set(['key', 'sig', 'signature', 'auth', 'pass', 'pwd', 'jwt', 'sessionid', 'otp']);
const SECRET_SUFFIXES = [
  'token',
  'secret',
  'password',
  'passwd',
  'passphrase',
  'apikey',
  'accesskey',
  'secretkey',
  'privatekey',
  'authkey',
  'authorization',
  'auth',
  'cookie',
  'credential',
  'credentials',
];

export function isSecretName(name: string): boolean {
  const normalized = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_NAMES.has(normalized) || SECRET_SUFFIXES.some((suffix) => normalized.endsWith(suffix));
}

const REDACTED = '[Redacted]';

/**
 * name=value pairs as they appear in URLs and form bodies. The name is matched decoded: a client writing
 * ?%74oken= is authenticated by a server that decodes it (cdr-ingest does), so the log must see it as "token".
 */
const PARAMS = /(^|[?&;\s"'(,])([^\s=&#?;"'(),]+)=([^&#;\s"'(),]*)/g;
/** scheme://user:password@host: the password part. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@"']*):([^/\s@"']*)@/gi;
/** An Authorization header value quoted in a message ("Bearer abc..."); short words ("Bearer realm") are not tokens. */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*/g;

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** Replaces every credential in free text (query parameters, URL passwords, bearer tokens) with "[Redacted]". */
export function scrubText(text: string): string {
  return text
    .replace(PARAMS, (match, lead: string, name: string, value: string) =>
      value !== '' && isSecretName(decodeName(name)) ? `${lead}${name}=${REDACTED}` : match,
    )
    .replace(USERINFO, `$1:${REDACTED}@`)
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`);
}

/** Replaces the values of credential-looking query parameters (and a URL password) with "[Redacted]". */
export function scrubUrl(url: string): string {
  return scrubText(url);
}

/** A log record with every field named like a credential censored and every string scrubbed, at any depth. */
function scrubValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    // Whatever a credential-named field holds goes (Set-Cookie is an array, `auth` may be {user, pass}); flags stay.
    out[name] = isSecretName(name) && field !== null && typeof field !== 'boolean' ? REDACTED : scrubValue(field, depth + 1);
  }
  return out;
}

/**
 * The last step before a line is written, whatever logged it (a service, Fastify, an error's message or stack):
 * the REDACT_PATHS above only cover fields someone thought of, this covers the rest. A line that does not parse
 * (never expected from pino) is scrubbed as text.
 */
export function scrubLogLine(line: string): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return scrubText(line);
  }
  return `${JSON.stringify(scrubValue(record, 0))}\n`;
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
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers,
    ...options,
    hooks: { ...options.hooks, streamWrite: (line: string) => scrubLogLine(options.hooks?.streamWrite?.(line) ?? line) },
  };
  return destination ? pino(logOptions, destination) : pino(logOptions);
}

export type { Logger };
