import { HttpProblem, tokenMatches } from '@cms/http';
import type { FastifyRequest } from 'fastify';
import type { Principal, SessionAuth } from '../auth.ts';
import { type ConsoleSession, SESSION_IDLE_SECONDS, type SessionStore } from './sessions.ts';

/** Plain HTTP (a laptop, behind nothing) cannot use the __Host- prefix, which requires Secure. */
const COOKIE_HTTP = 'cms_console';
/** Over TLS: Secure, and __Host- so no subdomain or path can plant or shadow it. */
const COOKIE_TLS = '__Host-cms_console';

/** The header the console's scripts send the session's CSRF token in. */
const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'fastify' {
  interface FastifyRequest {
    /** The console session the request came with (set by the session check), null for bearer-token clients. */
    consoleSession: ConsoleSession | null;
  }
}

/**
 * Whether the browser reached us over TLS: directly, or through a proxy that says so. Trusting the header only
 * makes the cookie stricter (Secure), never looser.
 */
function overTls(request: FastifyRequest): boolean {
  if (request.protocol === 'https') return true;
  const forwarded = request.headers['x-forwarded-proto'];
  return typeof forwarded === 'string' && forwarded.split(',')[0]?.trim() === 'https';
}

function cookieValue(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name === COOKIE_TLS || name === COOKIE_HTTP) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie header of a new session: HttpOnly, SameSite=Strict, Secure over TLS, ending with the idle timeout. */
export function sessionCookie(request: FastifyRequest, id: string): string {
  const tls = overTls(request);
  return [
    `${tls ? COOKIE_TLS : COOKIE_HTTP}=${id}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${SESSION_IDLE_SECONDS}`,
    ...(tls ? ['Secure'] : []),
  ].join('; ');
}

/** Set-Cookie headers that remove the session cookie (both names: the request may have come either way). */
export function clearedCookies(request: FastifyRequest): string[] {
  const tls = overTls(request);
  return [
    `${COOKIE_HTTP}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`,
    ...(tls ? [`${COOKIE_TLS}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure`] : []),
  ];
}

export function sessionId(request: FastifyRequest): string | undefined {
  return cookieValue(request);
}

/**
 * Cross-site requests that change something are refused even where a browser would send the cookie: the Origin,
 * when the browser sends one, must be this service (scheme-less compare: the Host header is all we know of it).
 */
export function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function csrfProblem(detail: string): HttpProblem {
  return new HttpProblem(403, 'Forbidden', detail);
}

/** Checks a state-changing request's CSRF token (constant time) and origin against its session. */
export function checkCsrf(request: FastifyRequest, session: ConsoleSession, presented: string | undefined): void {
  if (!sameOrigin(request)) throw csrfProblem('Cross-origin request refused: the console only accepts changes from its own pages.');
  if (!presented || !tokenMatches(presented, session.csrf)) {
    throw csrfProblem('The CSRF token is missing or does not match this session; reload the page and try again.');
  }
}

function sessionExpired(): HttpProblem {
  return new HttpProblem(401, 'Unauthorized', 'Your console session has expired or was signed out; sign in again.', {
    headers: { 'WWW-Authenticate': 'Bearer realm="records-api"' },
  });
}

/**
 * installAuth's session check for the API and the console's own routes: the cookie's session, and for every
 * state-changing method its CSRF token in X-CSRF-Token. A cookie whose session is gone answers 401 (the console
 * goes back to sign-in); no cookie leaves the request to the bearer-token rule.
 */
export function consoleSessionAuth(sessions: SessionStore): SessionAuth {
  return async (request): Promise<Principal | null> => {
    const id = cookieValue(request);
    if (id === undefined) return null;
    const session = await sessions.get(id);
    if (session === null) throw sessionExpired();
    if (!SAFE_METHODS.has(request.method)) {
      const header = request.headers[CSRF_HEADER];
      checkCsrf(request, session, typeof header === 'string' ? header : undefined);
    }
    request.consoleSession = session;
    return { name: session.name, role: session.role };
  };
}
