/**
 * The console's live views are shared: every open stream of one view and role is served by one read loop, so N
 * operators watching the meetings cost one read of the API per second, not N. Each stream still follows its own
 * session: one signed out gets `expired` and closes, the others go on, whoever's credentials the reads used.
 * Real records-api over HTTP, real Postgres and Redis (console sessions); reads are counted from the API's own
 * request metric.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createLogger } from '@cms/observability';
import { buildRecordsApi } from '../../services/records-api/src/app.ts';
import { testDatabase, testRedis } from '../helpers/infra.ts';
import { startPrivateRedis } from '../helpers/private-redis.ts';
import { bearer, insertCalls, recordsApiConfig, TOKENS } from '../helpers/records-fixtures.ts';

const { url, db } = await testDatabase();
const redis = await testRedis();
const config = recordsApiConfig(url, undefined, undefined, redis);
const { app, metricsApp, close } = await buildRecordsApi({ config, db, log: createLogger('records-api', 'silent') });
after(close);
const base = await app.listen({ host: '127.0.0.1', port: 0 });

await insertCalls(db, [{ id: 'first-call', node: 'cms-1', callCorrelator: 'first', name: 'First', startedAt: new Date().toISOString() }]);

/** GET /api/v1/calls requests the API has answered so far (the live meetings view reads it once per pass). */
async function callsReads(): Promise<number> {
  const res = await metricsApp.inject({ method: 'GET', url: '/metrics' });
  const line = res.body
    .split('\n')
    .filter(
      (l) => l.startsWith('http_request_duration_seconds_count{') && l.includes('route="/api/v1/calls"') && l.includes('method="GET"'),
    );
  return line.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

interface LiveStream {
  /** Resolves with the next event of `name` (its data parsed), or rejects when the stream ends first. */
  next(name: string, match?: (data: unknown) => boolean): Promise<unknown>;
  closedByServer: Promise<void>;
  close(): void;
}

/** Opens GET /console/live/meetings with `headers` and reads its events as they come. */
async function openStream(headers: Record<string, string>, at = base): Promise<LiveStream> {
  const abort = new AbortController();
  after(() => abort.abort());
  const res = await fetch(`${at}/console/live/meetings`, { headers, signal: abort.signal });
  assert.equal(res.status, 200);
  const events: { name: string; data: unknown }[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  const closedByServer = (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name && data) events.push({ name, data: JSON.parse(data) });
        }
        for (const wake of waiters) wake();
      }
    } catch {
      // Aborted by the test.
    } finally {
      ended = true;
      for (const wake of waiters) wake();
    }
  })();
  let read = 0;
  return {
    async next(name, match = () => true) {
      for (;;) {
        while (read < events.length) {
          const event = events[read++]!;
          if (event.name === name && match(event.data)) return event.data;
        }
        if (ended) throw new Error(`the stream ended before an ${name} event (${events.map((e) => e.name).join(', ')})`);
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
        });
      }
    },
    closedByServer,
    close: () => abort.abort(),
  };
}

/** The live views' pass interval (live.ts). */
const POLL_MS = 1000;

const meetingKeys = (data: unknown) => (data as { meetings: { meetingKey: string }[] }).meetings.map((m) => m.meetingKey);

/** A console session signed in with `token`: its cookie header, and its sign-out. */
async function signIn(token: string, at = base): Promise<{ cookie: string; signOut: () => Promise<void> }> {
  const res = await fetch(`${at}/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: at },
    body: new URLSearchParams({ token, next: '/' }).toString(),
  });
  assert.equal(res.status, 303);
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  return {
    cookie,
    signOut: async () => {
      const session = (await (await fetch(`${base}/console/session`, { headers: { cookie } })).json()) as { csrfToken: string };
      const out = await fetch(`${base}/sign-out`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, origin: base, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: session.csrfToken }).toString(),
      });
      assert.equal(out.status, 303);
    },
  };
}

test('five open streams of the meetings view share one read of the API per pass, and each sees a change', async () => {
  const streams = await Promise.all(Array.from({ length: 5 }, () => openStream(bearer(TOKENS.viewer))));
  for (const s of streams) assert.deepEqual(meetingKeys(await s.next('update')), ['first']);
  // Passes are counted by the change they carry: a new meeting, then another, each seen by every stream.
  const before = await callsReads();
  const started = performance.now();
  for (const id of ['second', 'third']) {
    await insertCalls(db, [{ id: `${id}-call`, node: 'cms-2', callCorrelator: id, name: id, startedAt: new Date().toISOString() }]);
    for (const s of streams) await s.next('update', (data) => meetingKeys(data).includes(id));
  }
  const reads = (await callsReads()) - before;
  const passes = Math.ceil((performance.now() - started) / POLL_MS) + 1;
  // Shared, the view is read once per pass (one a second); unshared, each of the 5 streams would read on every pass.
  // The window spans at least two passes (each change is seen at the pass after it), so the two differ.
  assert.ok(reads >= 2, `at least a pass per change (${reads} reads)`);
  assert.ok(reads <= passes, `GET /api/v1/calls read ${reads} times for 5 streams in ${passes} passes at most`);
  for (const s of streams) s.close();
});

test('a signed-out session gets expired and its stream closes; the other streams of the view go on', async () => {
  const first = await signIn(TOKENS.viewer);
  const second = await signIn(TOKENS.viewer);
  // The first session's stream is the oldest, so the shared reads are made with its cookie.
  const firstStream = await openStream({ cookie: first.cookie });
  await firstStream.next('update');
  const secondStream = await openStream({ cookie: second.cookie });
  await secondStream.next('update');

  await first.signOut();
  assert.deepEqual(await firstStream.next('expired'), { detail: 'Your console session has expired or was signed out; sign in again.' });
  await firstStream.closedByServer;

  await insertCalls(db, [
    { id: 'fourth-call', node: 'cms-1', callCorrelator: 'fourth', name: 'Fourth', startedAt: new Date().toISOString() },
  ]);
  const data = await secondStream.next('update', (d) => meetingKeys(d).includes('fourth'));
  assert.ok(meetingKeys(data).includes('fourth'), 'the signed-in stream still gets the view, now read with its own cookie');
  secondStream.close();
});

test('while the session store is down a stream shows the problem and stays open; with it back the view goes on', async () => {
  // A records-api of its own, whose console sessions live in a Redis this test stops (AOF on: the session survives).
  const sessionRedis = await startPrivateRedis({ aof: true });
  const own = await buildRecordsApi({
    config: recordsApiConfig(url, undefined, undefined, { url: sessionRedis.url, prefix: 'live-outage' }),
    db,
    log: createLogger('records-api', 'silent'),
  });
  after(own.close);
  const ownBase = await own.app.listen({ host: '127.0.0.1', port: 0 });
  const session = await signIn(TOKENS.viewer, ownBase);
  const live = await openStream({ cookie: session.cookie }, ownBase);
  await live.next('update');

  await sessionRedis.stop();
  const problem = (await live.next('problem')) as { status: number };
  assert.equal(problem.status, 503, 'the session cannot be checked: a problem, not expired');

  await sessionRedis.start();
  await insertCalls(db, [{ id: 'fifth-call', node: 'cms-1', callCorrelator: 'fifth', name: 'Fifth', startedAt: new Date().toISOString() }]);
  const data = await live.next('update', (d) => meetingKeys(d).includes('fifth'));
  assert.ok(meetingKeys(data).includes('fifth'), 'the same stream, the same session, updates again');
  live.close();
});
