/**
 * The console's Meetings list counts people from the legs' data: links between bridges (subType distributionLink,
 * lyncDistribution) are not people, whatever the number of bridges. GET /api/v1/calls says how many active legs of
 * each call are such links (activeBridgeLinkCount); the live meetings stream sums the rest.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { testDatabase } from '../helpers/infra.ts';
import { bearer, insertCallLegs, insertCalls, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

const { url, db } = await testDatabase();
const app = await startRecordsApi(db, { config: recordsApiConfig(url) });
const base = await app.listen({ host: '127.0.0.1', port: 0 });

const T0 = Date.parse('2026-12-07T09:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

interface Leg {
  id: string;
  callId: string;
  subType?: string;
  endedAt?: string;
}

// Board: on cms-1 two people and its link to cms-2; on cms-2 one person, and its end of the link has not reported yet
// (CDRs of different bridges arrive independently), so the arithmetic "two link legs per extra bridge" would be wrong.
// Skype: one bridge, one person and a dual-homed Lync conference link. Ended: a person who left is not counted.
await insertCalls(db, [
  { id: 'board-1', node: 'cms-1', callCorrelator: 'board', name: 'Board', startedAt: at(0) },
  { id: 'board-2', node: 'cms-2', callCorrelator: 'board', name: 'Board', startedAt: at(1) },
  { id: 'skype-1', node: 'cms-1', callCorrelator: 'skype', name: 'Skype', startedAt: at(2) },
]);
const legs: Leg[] = [
  { id: 'b1-alice', callId: 'board-1', subType: 'webApp' },
  { id: 'b1-bob', callId: 'board-1' },
  { id: 'b1-link', callId: 'board-1', subType: 'distributionLink' },
  { id: 'b1-gone', callId: 'board-1', endedAt: at(30) },
  { id: 'b1-old-link', callId: 'board-1', subType: 'distributionLink', endedAt: at(30) },
  { id: 'b2-carol', callId: 'board-2' },
  { id: 's1-dave', callId: 'skype-1' },
  { id: 's1-lync', callId: 'skype-1', subType: 'lyncDistribution' },
];
await insertCallLegs(
  db,
  legs.map((l, i) => ({ id: l.id, callId: l.callId, subType: l.subType ?? null, startedAt: at(10 + i), endedAt: l.endedAt ?? null })),
);

test('GET /api/v1/calls counts each call active bridge links from their subType', async () => {
  const res = await fetch(`${base}/api/v1/calls?active=true`, { headers: bearer(TOKENS.viewer) });
  assert.equal(res.status, 200);
  const { calls } = (await res.json()) as { calls: { id: string; activeLegCount: number; activeBridgeLinkCount: number }[] };
  const byId = new Map(calls.map((c) => [c.id, c]));
  assert.deepEqual(
    ['board-1', 'board-2', 'skype-1'].map((id) => [id, byId.get(id)?.activeLegCount, byId.get(id)?.activeBridgeLinkCount]),
    [
      ['board-1', 3, 1],
      ['board-2', 1, 0],
      ['skype-1', 2, 1],
    ],
  );
});

/** The first `update` event of the console's live meetings stream. */
async function liveMeetings(): Promise<{ meetingKey: string; participants: number; nodes: string[] }[]> {
  const abort = new AbortController();
  after(() => abort.abort());
  const res = await fetch(`${base}/console/live/meetings`, { headers: bearer(TOKENS.viewer), signal: abort.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before an update: ${text}`);
      text += value;
      const match = /event: update\ndata: (.*)\n\n/.exec(text);
      if (match) return (JSON.parse(match[1]!) as { meetings: { meetingKey: string; participants: number; nodes: string[] }[] }).meetings;
    }
  } finally {
    abort.abort();
  }
}

test('the Meetings list counts the people, not the links between bridges', async () => {
  const meetings = new Map((await liveMeetings()).map((m) => [m.meetingKey, m]));
  assert.deepEqual(meetings.get('board')?.nodes, ['cms-1', 'cms-2']);
  assert.equal(meetings.get('board')?.participants, 3, 'alice, bob and carol');
  assert.equal(meetings.get('skype')?.participants, 1, 'dave; the Lync conference link is not a person');
});
