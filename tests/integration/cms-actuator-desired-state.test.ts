/**
 * The actuator's reads and writes of call_messages (services/cms-actuator/src/desired-state.ts), against a real
 * Postgres: the desired row with what is known of the call's end and its last accepted write, and the
 * compare-and-set that keeps a newer desired version from being marked as shown.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { callMessages, calls, type Database } from '@cms/db';
import { eq } from 'drizzle-orm';
import {
  insertWriteRecord,
  loadDesired,
  markApplied,
  markCallEnded,
  markDeadLettered,
} from '../../services/cms-actuator/src/desired-state.ts';
import { testDatabase } from '../helpers/infra.ts';

let db: Database;
let n = 0;

before(async () => {
  db = (await testDatabase()).db;
});

/** A call with a desired message at `version` (the policy worker's row), on a fresh call id. */
async function desired(version = 1, call: Partial<typeof calls.$inferInsert> = {}): Promise<string> {
  const callId = `call-${++n}`;
  await db.insert(calls).values({ id: callId, node: 'cms1', ...call });
  await db.insert(callMessages).values({
    callId,
    node: 'cms1',
    meetingKey: 'meeting-1',
    level: 3,
    messageText: 'Security Level 3',
    messagePosition: 'bottom',
    messageDuration: 'permanent',
    version,
    status: 'pending',
  });
  return callId;
}

const row = async (callId: string) => (await db.select().from(callMessages).where(eq(callMessages.callId, callId)))[0]!;

const write = (callId: string, version: number, status: 'applied' | 'retrying' = 'applied') => ({
  node: 'cms1',
  kind: 'callMessage' as const,
  callId,
  desiredText: 'Security Level 3',
  version,
  status,
  httpStatus: status === 'applied' ? 200 : 503,
  failureReason: null,
  attempts: 1,
  latencyMs: 5,
});

describe('loadDesired', () => {
  test('nothing desired for an unknown call', async () => {
    assert.equal(await loadDesired(db, 'call-unknown'), undefined);
  });

  test('the desired message with its version, and no accepted write yet', async () => {
    const callId = await desired(4);
    const loaded = await loadDesired(db, callId);
    assert.deepEqual(
      {
        text: loaded?.messageText,
        position: loaded?.messagePosition,
        duration: loaded?.messageDuration,
        version: loaded?.version,
        appliedVersion: loaded?.appliedVersion,
        status: loaded?.status,
        callEndedAt: loaded?.callEndedAt,
        sinceLastWriteMs: loaded?.sinceLastWriteMs,
      },
      {
        text: 'Security Level 3',
        position: 'bottom',
        duration: 'permanent',
        version: 4,
        appliedVersion: null,
        status: 'pending',
        callEndedAt: null,
        sinceLastWriteMs: null,
      },
    );
  });

  test('how long ago CMS last accepted a write of this call, as a number; other outcomes do not count', async () => {
    const callId = await desired();
    await insertWriteRecord(db, write(callId, 1, 'retrying'));
    assert.equal((await loadDesired(db, callId))?.sinceLastWriteMs, null);
    await insertWriteRecord(db, write(callId, 1));
    const since = (await loadDesired(db, callId))?.sinceLastWriteMs;
    assert.equal(typeof since, 'number');
    assert.ok(since! >= 0 && since! < 60_000, String(since));
  });

  test("the call's end, when known", async () => {
    const callId = await desired(1, { endedAt: '2026-01-01T10:00:00Z' });
    assert.ok((await loadDesired(db, callId))?.callEndedAt);
  });
});

describe('markApplied', () => {
  test('marks the version CMS now shows, with how it got there', async () => {
    const callId = await desired(2);
    assert.equal(await markApplied(db, callId, 2, 'unchanged'), true);
    const stored = await row(callId);
    assert.equal(stored.appliedVersion, 2);
    assert.equal(stored.status, 'unchanged');
    assert.ok(stored.appliedAt);
  });

  test('a version no longer desired is not marked: the newer one still has to be written', async () => {
    const callId = await desired(3);
    assert.equal(await markApplied(db, callId, 2, 'applied'), false);
    const stored = await row(callId);
    assert.equal(stored.appliedVersion, null);
    assert.equal(stored.status, 'pending');
  });
});

describe('markDeadLettered', () => {
  test('marks only the version that failed', async () => {
    const callId = await desired(5);
    await markDeadLettered(db, callId, 4);
    assert.equal((await row(callId)).status, 'pending');
    await markDeadLettered(db, callId, 5);
    assert.equal((await row(callId)).status, 'deadLettered');
  });
});

describe('markCallEnded', () => {
  test('ends the call and its message; an end already known is kept', async () => {
    const callId = await desired();
    await markCallEnded(db, callId);
    assert.equal((await row(callId)).status, 'callEnded');
    const [call] = await db.select().from(calls).where(eq(calls.id, callId));
    assert.ok(call?.endedAt);

    const known = await desired(1, { endedAt: '2026-01-01T10:00:00Z' });
    await markCallEnded(db, known);
    const [kept] = await db.select().from(calls).where(eq(calls.id, known));
    assert.equal(new Date(kept!.endedAt!).toISOString(), '2026-01-01T10:00:00.000Z');
  });
});
