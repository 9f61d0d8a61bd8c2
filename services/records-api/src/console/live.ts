import { createHash } from 'node:crypto';
import { bearerToken, HttpProblem } from '@cms/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SessionAuth } from '../auth.ts';
import { type ApiAnswer, type SharedView, SharedViews } from './shared-view.ts';

/**
 * How often a live view reads the API again (once for all its streams of one role: shared-view.ts); only changes are
 * sent, so an idle view costs reads, not traffic.
 */
const POLL_MS = 1_000;
/** A comment line now and then keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
/** Most pages of active calls read for the meetings view (500 each). */
const MAX_CALL_PAGES = 20;

/**
 * Reads the HTTP API in-process as the browser's own session (its cookie), so the console sees exactly what the
 * API serves that user, with the same authorisation, and its SQL is not duplicated here.
 */
export async function readApi(app: FastifyInstance, request: FastifyRequest, url: string): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (request.headers.cookie) headers.cookie = request.headers.cookie;
  if (request.headers.authorization) headers.authorization = request.headers.authorization;
  const res = await app.inject({ method: 'GET', url, headers });
  if (res.statusCode === 200) return { ok: true, body: res.json() };
  let detail = res.body;
  try {
    detail = (res.json() as { detail?: string }).detail ?? res.body;
  } catch {
    // Not JSON: the body is the best description there is.
  }
  return { ok: false, status: res.statusCode, detail };
}

interface CallMessage {
  text: string;
  status: string;
}

interface CallSummary {
  id: string;
  node: string | null;
  callBridge: string | null;
  name: string | null;
  coSpace: string | null;
  startedAt: string | null;
  activeLegCount: number;
  activeBridgeLinkCount: number;
  meetingKey: string;
  level: number | null;
  message: CallMessage | null;
}

/** One row of the live meetings view: a meeting across all its bridges. */
interface LiveMeeting {
  meetingKey: string;
  name: string;
  level: number | null;
  /** Nodes hosting an instance (the bridges the meeting spans). */
  nodes: string[];
  /** Call ids of the instances, for the actions that take one. */
  callIds: string[];
  participants: number;
  /** Waiting in the lobby, or null while the lobby cannot be read. */
  lobby: number | null;
  message: string | null;
  /** applied: every instance shows it; pending: not yet everywhere; failed: CMS refused it; none: no message. */
  messageState: 'applied' | 'pending' | 'failed' | 'unmanaged' | 'none';
  startedAt: string | null;
}

const SHOWN = new Set(['applied', 'unchanged']);

function messageState(messages: (CallMessage | null)[]): LiveMeeting['messageState'] {
  const present = messages.filter((m): m is CallMessage => m !== null);
  if (present.length === 0) return 'none';
  if (present.some((m) => m.status === 'deadLettered')) return 'failed';
  if (present.every((m) => m.status === 'unmanaged')) return 'unmanaged';
  return present.every((m) => SHOWN.has(m.status) || m.status === 'unmanaged') ? 'applied' : 'pending';
}

/** Groups active call instances into meetings; `lobby` counts waiting participants per call id when known. */
function liveMeetings(calls: CallSummary[], lobby: Map<string, number> | null): LiveMeeting[] {
  const byKey = new Map<string, CallSummary[]>();
  for (const call of calls) {
    const list = byKey.get(call.meetingKey);
    if (list) list.push(call);
    else byKey.set(call.meetingKey, [call]);
  }
  const meetings: LiveMeeting[] = [];
  for (const [meetingKey, instances] of byKey) {
    instances.sort((a, b) => (a.startedAt ?? '~').localeCompare(b.startedAt ?? '~') || a.id.localeCompare(b.id));
    const first = instances[0]!;
    const starts = instances.map((i) => i.startedAt).filter((s): s is string => s !== null);
    meetings.push({
      meetingKey,
      name: first.name ?? first.coSpace ?? meetingKey,
      level: first.level,
      nodes: [...new Set(instances.map((i) => i.node ?? i.callBridge ?? '?'))].sort(),
      callIds: instances.map((i) => i.id),
      // CMS joins the instances of a meeting with distributionLink legs; they are not people. Counted from the legs'
      // subType, not assumed (two per extra bridge), so a link whose other end has not reported yet is not a person.
      participants: instances.reduce((n, i) => n + i.activeLegCount - i.activeBridgeLinkCount, 0),
      lobby: lobby === null ? null : instances.reduce((n, i) => n + (lobby.get(i.id) ?? 0), 0),
      message: messageOf(instances.map((i) => i.message)),
      messageState: messageState(instances.map((i) => i.message)),
      startedAt: starts.sort()[0] ?? null,
    });
  }
  // Stable order, so rows do not jump about as updates arrive: oldest meeting first.
  meetings.sort((a, b) => (a.startedAt ?? '~').localeCompare(b.startedAt ?? '~') || a.meetingKey.localeCompare(b.meetingKey));
  return meetings;
}

function messageOf(messages: (CallMessage | null)[]): string | null {
  const text = messages.find((m) => m !== null && m.text !== '')?.text;
  return text ?? null;
}

interface LobbyEntry {
  callId?: string | null;
}

/** Waiting participants per call id from GET /api/v1/lobby (whatever list key it uses), or null when unreadable. */
function lobbyCounts(answer: ApiAnswer): Map<string, number> | null {
  if (!answer.ok) return null;
  const body = answer.body as Record<string, unknown>;
  const list = (Array.isArray(body) ? body : (body.participants ?? body.lobby ?? body.waiting)) as LobbyEntry[] | undefined;
  if (!Array.isArray(list)) return null;
  const counts = new Map<string, number>();
  for (const entry of list) {
    if (typeof entry.callId === 'string') counts.set(entry.callId, (counts.get(entry.callId) ?? 0) + 1);
  }
  return counts;
}

/** Every active meeting, as the API serves them to this session. */
async function readLiveMeetings(app: FastifyInstance, request: FastifyRequest): Promise<ApiAnswer> {
  const calls: CallSummary[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < MAX_CALL_PAGES; page++) {
    const query = new URLSearchParams({ active: 'true', limit: '500' });
    if (cursor) query.set('cursor', cursor);
    const answer = await readApi(app, request, `/api/v1/calls?${query}`);
    if (!answer.ok) return answer;
    const body = answer.body as { calls: CallSummary[]; nextCursor: string | null };
    calls.push(...body.calls);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  const lobby = lobbyCounts(await readApi(app, request, '/api/v1/lobby'));
  return { ok: true, body: { meetings: liveMeetings(calls, lobby), lobbyKnown: lobby !== null } };
}

/** A GET of the HTTP API the live stream may follow: under /api/v1, no tricks with dots or schemes. */
function watchablePath(path: unknown): path is string {
  return (
    typeof path === 'string' &&
    (path.startsWith('/api/v1/') || path.startsWith('/console/api/')) &&
    !path.includes('..') &&
    !path.includes('//') &&
    path.length < 2048
  );
}

/**
 * Why the stream's own credentials no longer hold (the session store's 401 detail), or null while they do: a console
 * session can end (sign-out, expiry) while its stream is open, and the stream's answers come from reads made with
 * another stream's credentials. A bearer token cannot change while the service runs. Throws where the session store
 * cannot answer.
 */
async function sessionEnded(request: FastifyRequest, sessionAuth: SessionAuth): Promise<string | null> {
  if (bearerToken(request.headers.authorization) !== undefined) return null;
  try {
    return (await sessionAuth(request)) === null ? 'No console session: sign in.' : null;
  } catch (err) {
    if (err instanceof HttpProblem && err.status === 401) return err.detail;
    throw err;
  }
}

/**
 * Server-Sent Events: sends each answer of the shared view whenever it changed (`event: update`); a session that
 * ended gets `event: expired` and the stream closes, a refused read `event: problem`.
 */
async function stream(
  request: FastifyRequest,
  reply: FastifyReply,
  view: SharedView,
  sessionAuth: SessionAuth,
  streams: Set<() => void>,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  res.write('retry: 2000\n\n');
  let open = true;
  let lastDigest = '';
  let lastSentAt = Date.now();
  let seq = 0;
  // The client going away, or the service shutting down (a hijacked reply would otherwise hold close() open).
  let stop = () => {};
  const closed = new Promise<void>((resolve) => {
    stop = resolve;
    request.raw.once('close', resolve);
  });
  streams.add(stop);
  void closed.then(() => {
    open = false;
  });
  const send = (event: string, data: unknown) => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    lastSentAt = Date.now();
  };
  view.join(request);
  try {
    while (open) {
      const published = await Promise.race([closed.then(() => null), view.next(seq)]);
      if (!open || published === null) break;
      seq = published.seq;
      let answer = published.answer;
      try {
        const ended = await sessionEnded(request, sessionAuth);
        if (ended !== null) {
          send('expired', { detail: ended });
          break;
        }
      } catch (err) {
        request.log.warn({ err }, 'live view could not check the session');
        answer = { ok: false, status: 503, detail: 'The live view could not check the session; retrying.' };
      }
      // The read was made with the oldest stream's credentials: its session ended, this one's holds. That stream
      // leaves on its own answer, and the next read is made with the next stream's.
      if (!answer.ok && answer.status === 401) continue;
      const payload = answer.ok ? { event: 'update', data: answer.body } : { event: 'problem', data: answer };
      const digest = createHash('sha1').update(payload.event).update(JSON.stringify(payload.data)).digest('hex');
      if (digest !== lastDigest) {
        send(payload.event, payload.data);
        lastDigest = digest;
      } else if (Date.now() - lastSentAt > KEEPALIVE_MS) {
        res.write(': keepalive\n\n');
        lastSentAt = Date.now();
      }
    }
  } finally {
    view.leave(request);
    streams.delete(stop);
    res.end();
  }
}

/** GET /console/live/meetings and GET /console/live?path=/api/v1/…: the live views' event streams. */
export function registerLiveRoutes(scope: FastifyInstance, app: FastifyInstance, sessionAuth: SessionAuth): void {
  const streams = new Set<() => void>();
  const views = new SharedViews(POLL_MS);
  app.addHook('preClose', async () => {
    for (const stop of streams) stop();
  });
  // installAuth ran on the stream's request: its principal is set.
  const role = (request: FastifyRequest) => request.principal?.role ?? 'none';
  scope.get('/console/live/meetings', async (request, reply) => {
    const view = views.view(role(request), 'meetings', (reader) => readLiveMeetings(app, reader));
    await stream(request, reply, view, sessionAuth, streams);
  });
  scope.get<{ Querystring: { path?: string } }>('/console/live', async (request, reply) => {
    const path = request.query.path;
    if (!watchablePath(path)) {
      return reply.code(400).type('application/problem+json').send({
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        detail: 'path must be a GET path of the API under /api/v1/',
      });
    }
    const view = views.view(role(request), `path ${path}`, (reader) => readApi(app, reader, path));
    await stream(request, reply, view, sessionAuth, streams);
  });
}
