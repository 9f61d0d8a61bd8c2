// The console's one way to the server: the same /api/v1 routes every client uses, with the session cookie
// (sent by the browser) and, for every change, the session's CSRF token in X-CSRF-Token.
import { useEffect, useState } from 'preact/hooks';

let csrfToken = '';

export function setCsrfToken(token) {
  csrfToken = token ?? '';
}

/** An answer the API refused: its status and the problem's detail (which says what to do). */
export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.problem = problem;
  }
}

/** The session is gone (expired, signed out elsewhere): back to sign-in, then back here. */
export function goToSignIn() {
  const here = location.pathname + location.search;
  location.assign(`/sign-in?expired&next=${encodeURIComponent(here)}`);
}

export async function api(path, { method = 'GET', body, headers = {} } = {}) {
  const sent = { accept: 'application/json, application/problem+json', ...headers };
  if (body !== undefined) sent['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') sent['x-csrf-token'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (res.status === 401) {
    goToSignIn();
    throw new ApiError(401, data?.detail ?? 'Your session has expired; sign in again.', data);
  }
  if (!res.ok) {
    const detail = data?.detail ?? `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, res.status === 404 && !data?.detail ? `${path} is not available on this server` : detail, data);
  }
  return { status: res.status, data };
}

/**
 * A live view: the server re-reads `path` of the API every second and sends it when it changed (Server-Sent
 * Events). Returns { data, problem, connected }; an ended session goes back to sign-in.
 */
export function useLive(streamUrl) {
  const [state, setState] = useState({ data: null, problem: null, connected: false });
  useEffect(() => {
    if (!streamUrl) return undefined;
    setState({ data: null, problem: null, connected: false });
    const source = new EventSource(streamUrl);
    source.addEventListener('open', () => setState((s) => ({ ...s, connected: true })));
    source.addEventListener('update', (e) => setState({ data: JSON.parse(e.data), problem: null, connected: true }));
    source.addEventListener('problem', (e) => setState((s) => ({ ...s, problem: JSON.parse(e.data), connected: true })));
    source.addEventListener('expired', () => {
      source.close();
      goToSignIn();
    });
    source.addEventListener('error', () => setState((s) => ({ ...s, connected: false })));
    return () => source.close();
  }, [streamUrl]);
  return state;
}

export function liveApi(path) {
  return `/console/live?path=${encodeURIComponent(path)}`;
}
