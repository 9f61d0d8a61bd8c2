/**
 * The actuator fills in a call's callCorrelator (the events feed's `calls` subscription, a reconciliation pass) and
 * so moves the call to its meeting, whose level the call row copies (calls.level, migration 0011 triggers). It does
 * so under the meeting's advisory lock, as the policy worker's decisions and call writes do: a decision changing the
 * meeting's level in flight would otherwise leave the joining call with the level from before it.
 *
 * Each test holds a decision open (the meeting's lock taken as lockMeetings takes it, the level changed, not
 * committed), starts the actuator's write, waits until the write is done or waits for a lock, commits the decision,
 * then checks the call's copy equals the meeting's level. Without the lock the write completes at once and copies
 * the level from before the decision.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { calls, type Database, meetings, pg } from '@cms/db';
import { eq } from 'drizzle-orm';
import { storeListedCall } from '../../services/cms-actuator/src/events/call-store.ts';
import { storeSnapshot } from '../../services/cms-actuator/src/reconcile/snapshot-store.ts';
import { eventually, testDatabase } from '../helpers/infra.ts';

const database = await testDatabase();
const db: Database = database.db;

/** A meeting at level 2 with one instance on cms2, and a call on cms1 not yet known to belong to it. */
async function meetingAndStrayCall(): Promise<{ key: string; stray: string }> {
  const key = randomUUID();
  const stray = randomUUID();
  await db.insert(calls).values([
    { id: randomUUID(), node: 'cms2', callCorrelator: key, startedAt: '2026-12-07T10:00:00Z' },
    { id: stray, node: 'cms1', startedAt: '2026-12-07T10:00:01Z' },
  ]);
  await db.insert(meetings).values({ meetingKey: key, level: 2 });
  return { key, stray };
}

/** Runs `write` while a decision moving meeting `key` to level 3 holds the meeting's lock, then commits the decision. */
async function duringDecision(key: string, write: () => Promise<unknown>): Promise<void> {
  const decision = new pg.Client({ connectionString: database.url });
  await decision.connect();
  try {
    await decision.query('BEGIN');
    await decision.query(`SELECT pg_advisory_xact_lock(hashtextextended('meeting:' || $1::text, 7271))`, [key]);
    await decision.query('UPDATE meetings SET level = 3, updated_at = now() WHERE meeting_key = $1', [key]);
    let done = false;
    const writing = write().finally(() => {
      done = true;
    });
    await eventually(
      async () =>
        done ||
        (
          await decision.query(
            `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()`,
          )
        ).rowCount === 1,
      { what: "the actuator's write done or waiting for a lock" },
    );
    await decision.query('COMMIT');
    await writing;
  } finally {
    await decision.end();
  }
}

async function levelOf(callId: string): Promise<number | null | undefined> {
  const [row] = await db.select({ level: calls.level }).from(calls).where(eq(calls.id, callId));
  return row?.level;
}

test("a call the events feed lists with its callCorrelator takes its meeting's level decided meanwhile", async () => {
  const { key, stray } = await meetingAndStrayCall();
  await duringDecision(key, () => storeListedCall(db, 'cms1', { id: stray, name: 'Board', callCorrelator: key }));
  const [row] = await db.select({ callCorrelator: calls.callCorrelator }).from(calls).where(eq(calls.id, stray));
  assert.equal(row?.callCorrelator, key);
  assert.equal(await levelOf(stray), 3);
});

test("a call a reconciliation pass lists with its callCorrelator takes its meeting's level decided meanwhile", async () => {
  const { key, stray } = await meetingAndStrayCall();
  // And one CMS lists that no CDR has named yet: inserted, it takes the level too.
  const unseen = randomUUID();
  await duringDecision(key, () =>
    storeSnapshot(db, 'cms1', {
      calls: [
        { id: stray, name: 'Board', coSpace: null, callCorrelator: key, detail: { id: stray } },
        { id: unseen, name: 'Board', coSpace: null, callCorrelator: key, detail: { id: unseen } },
      ],
      legs: [],
      gone: [],
      legsRead: 0,
    }),
  );
  assert.equal(await levelOf(stray), 3);
  assert.equal(await levelOf(unseen), 3);
});
