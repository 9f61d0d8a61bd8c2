/**
 * Deciding a change to a large meeting from its changed legs (participant_levels, security/apply-policy.ts), against
 * real Postgres: every decision must be the one decideMeetings makes from every leg of the meeting, read in the same
 * transaction, while reading only the changed legs.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { configSchema } from '@cms/config';
import { callLegObservations, callLegs, calls, cdrRecords, type Database, meetings, participantLevels } from '@cms/db';
import { compilePolicy, decideMeetings, type Level } from '@cms/policy';
import { eq, inArray, sql } from 'drizzle-orm';
import { applySecurityPolicy } from '../../services/policy-worker/src/security/apply-policy.ts';
import { loadMeetingState } from '../../services/policy-worker/src/security/load-meetings.ts';
import { testDatabase } from '../helpers/infra.ts';

const { db } = await testDatabase();
const lists = { secureDomains: ['secure.example'], internalDomains: ['corp.example'] };
const policy = compilePolicy(configSchema.shape.policy.parse(lists));
const managedNodes = new Set(['cms1', 'cms2', 'cms3', 'cms4']);
const DOMAIN: Record<Level, string> = { 1: 'secure.example', 2: 'corp.example', 3: 'elsewhere.example' };

type LegRow = typeof callLegs.$inferInsert;

/** A meeting over four bridges: one call instance per node, sharing the callCorrelator. */
async function meeting(): Promise<{ key: string; instances: string[] }> {
  const key = randomUUID();
  const instances = [1, 2, 3, 4].map(() => randomUUID());
  await db.insert(calls).values(instances.map((id, i) => ({ id, node: `cms${i + 1}`, callCorrelator: key })));
  return { key, instances };
}

const leg = (callId: string, level: Level, facts: Partial<LegRow> = {}): LegRow => {
  const id = facts.id ?? randomUUID();
  return { id, callId, type: 'sip', state: 'connected', remoteParty: `${id.slice(0, 8)}@${DOMAIN[level]}`, ...facts };
};

/**
 * Applies `change` to the stored legs and decides the meeting as the worker does, in one transaction; beside it, what
 * decideMeetings makes of every leg, read in the same transaction before the decision is stored.
 */
async function decide(
  database: Database,
  key: string,
  change: { legs?: LegRow[]; callIds: string[]; reread?: boolean; liveIds?: string[] },
  options: { policy?: typeof policy } = {},
) {
  const used = options.policy ?? policy;
  return database.transaction(async (tx) => {
    for (const row of change.legs ?? []) {
      await tx
        .insert(callLegs)
        .values(row)
        .onConflictDoUpdate({ target: callLegs.id, set: { ...row, updatedAt: sql`now()` } });
    }
    const legIds = (change.legs ?? []).map((l) => l.id as string);
    const reference = decideMeetings({
      keys: [key],
      state: await loadMeetingState(tx, [key]),
      changedLegIds: legIds,
      policy: used,
      managedNodes,
    });
    const outcome = await applySecurityPolicy(
      tx,
      {
        legIds,
        callIds: change.callIds,
        ...(change.reread ? { reread: true } : {}),
        ...(change.liveIds ? { liveIds: change.liveIds } : {}),
      },
      used,
      managedNodes,
    );
    return { reference, outcome };
  });
}

async function stored(key: string) {
  const [row] = await db.select().from(meetings).where(eq(meetings.meetingKey, key));
  return row ? { meetingKey: row.meetingKey, level: row.level, decisiveLegId: row.decisiveLegId } : undefined;
}

/** The first decision reads every leg; the rows it leaves let the next ones read only their changes. */
async function bigMeeting(levels: (i: number) => Level) {
  const { key, instances } = await meeting();
  const rows = Array.from({ length: 1000 }, (_, i) => leg(instances[i % 4] as string, levels(i)));
  await db.insert(callLegs).values(rows);
  const first = await decide(db, key, { callIds: instances });
  assert.equal(first.outcome.cost?.instancesReread, 4);
  assert.equal(first.outcome.cost?.legsRead, 1000);
  assert.deepEqual(first.outcome.levelChanges, first.reference.levelChanges);
  return { key, instances, rows };
}

describe('a change to a meeting of a thousand participants', () => {
  test('reads only the changed legs and decides as every leg would, over joins, departures, lobby moves and new addresses', async () => {
    const { key, instances, rows } = await bigMeeting((i) => (i % 97 === 0 ? 2 : 1));
    const present = rows.map((r) => r.id as string);
    let serial = 0;
    const random = () => {
      serial = (serial * 1103515245 + 12345) % 2147483648;
      return serial / 2147483648;
    };
    let levelChanges = 0;
    for (let step = 0; step < 60; step++) {
      const kind = random();
      const callId = instances[Math.floor(random() * 4)] as string;
      let changed: LegRow;
      if (kind < 0.35) {
        // A join, now and then of a guest or an external participant.
        const level: Level = random() < 0.3 ? 3 : random() < 0.5 ? 2 : 1;
        changed = leg(callId, level, random() < 0.3 ? { guestConnection: true } : {});
        present.push(changed.id as string);
      } else {
        // Half of the changes are to the decisive participant, so that the worst one leaves as often as anybody.
        const decisive = (await stored(key))?.decisiveLegId;
        const id = decisive && random() < 0.5 ? decisive : (present[Math.floor(random() * present.length)] as string);
        const [target] = await db.select().from(callLegs).where(eq(callLegs.id, id));
        assert.ok(target);
        if (kind < 0.7) {
          changed = { ...target, endedAt: new Date().toISOString() };
          present.splice(present.indexOf(target.id), 1);
        } else if (kind < 0.85) changed = { ...target, deactivated: !target.deactivated };
        else changed = { ...target, remoteParty: `moved@${DOMAIN[(1 + Math.floor(random() * 3)) as Level]}` };
      }
      const { reference, outcome } = await decide(db, key, { legs: [changed], callIds: [changed.callId as string] });
      assert.equal(outcome.cost?.instancesReread, 0, `step ${step}: decided from the changed legs`);
      assert.equal(outcome.cost?.legsRead, 1, `step ${step}: one leg read`);
      assert.deepEqual(outcome.levelChanges, reference.levelChanges, `step ${step}: level history`);
      assert.deepEqual(outcome.writes, reference.writes, `step ${step}: writes`);
      assert.deepEqual(await stored(key), reference.levels[0], `step ${step}: meetings row`);
      levelChanges += reference.levelChanges.length;
    }
    assert.ok(levelChanges >= 5, `the walk moved the level only ${levelChanges} times`);
  });

  test('the worst participant leaving improves the level to the next worst, and the last of those to the best', async () => {
    const { key, instances } = await bigMeeting(() => 1);
    const internal = leg(instances[2] as string, 2);
    const guest = leg(instances[1] as string, 3, { guestConnection: true });
    const joined = await decide(db, key, { legs: [internal, guest], callIds: [instances[1] as string, instances[2] as string] });
    assert.deepEqual(
      joined.outcome.levelChanges.map((c) => [c.oldLevel, c.newLevel, c.causeLegId]),
      [[1, 3, guest.id]],
    );

    const guestLeft = await decide(db, key, {
      legs: [{ ...guest, endedAt: new Date().toISOString() }],
      callIds: [instances[1] as string],
    });
    assert.equal(guestLeft.outcome.cost?.legsRead, 1);
    assert.deepEqual(
      guestLeft.outcome.levelChanges.map((c) => [c.oldLevel, c.newLevel, c.causeLegId, c.reason?.rule]),
      [[3, 2, guest.id, 'internalDomain']],
    );
    assert.deepEqual(await stored(key), { meetingKey: key, level: 2, decisiveLegId: internal.id });
    assert.equal(guestLeft.outcome.writes.length, 4, 'every instance is told');

    const internalLeft = await decide(db, key, {
      legs: [{ ...internal, endedAt: new Date().toISOString() }],
      callIds: [instances[2] as string],
    });
    assert.deepEqual(internalLeft.outcome.levelChanges, internalLeft.reference.levelChanges);
    assert.deepEqual(
      internalLeft.outcome.levelChanges.map((c) => [c.oldLevel, c.newLevel, c.causeLegId]),
      [[2, 1, internal.id]],
    );
    assert.deepEqual(await stored(key), internalLeft.reference.levels[0]);
  });

  test("a recompute reads its calls' legs, a changed policy every leg; then changes are read alone again", async () => {
    const { key, instances } = await bigMeeting((i) => (i === 500 ? 2 : 1));
    // CMS's live view moved the internal participant (on the first instance) to the lobby: no CDR says so.
    const [internal] = await db
      .select()
      .from(callLegs)
      .where(eq(callLegs.id, (await stored(key))?.decisiveLegId ?? ''));
    assert.equal(internal?.remoteParty?.endsWith('@corp.example'), true);
    assert.ok(internal);
    await db.insert(callLegObservations).values({
      id: internal.id,
      callId: internal.callId as string,
      node: 'cms1',
      state: 'connected',
      deactivated: true,
      source: 'events',
    });
    const recompute = await decide(db, key, { callIds: [internal.callId as string], reread: true });
    assert.equal(recompute.outcome.cost?.instancesReread, 1);
    assert.equal(recompute.outcome.cost?.legsRead, 250);
    assert.deepEqual(recompute.outcome.levelChanges, recompute.reference.levelChanges);
    assert.deepEqual(
      recompute.outcome.levelChanges.map((c) => [c.oldLevel, c.newLevel]),
      [[2, 1]],
    );

    // corp.example becomes secure too: the stored levels were decided by another policy.
    const other = compilePolicy(configSchema.shape.policy.parse({ secureDomains: ['secure.example', 'corp.example'] }));
    const newcomer = leg(instances[3] as string, 1);
    const changedPolicy = await decide(db, key, { legs: [newcomer], callIds: [instances[3] as string] }, { policy: other });
    assert.equal(changedPolicy.outcome.cost?.instancesReread, 4);
    assert.deepEqual(changedPolicy.outcome.levelChanges, changedPolicy.reference.levelChanges);
    assert.equal((await stored(key))?.level, 1);

    const next = await decide(
      db,
      key,
      { legs: [{ ...newcomer, endedAt: new Date().toISOString() }], callIds: [instances[3] as string] },
      { policy: other },
    );
    assert.equal(next.outcome.cost?.instancesReread, 0);
    assert.equal(next.outcome.cost?.legsRead, 1);
  });

  test('a participant becoming a recorder (recordingStart) stops counting without a leg change', async () => {
    const { key, instances } = await bigMeeting(() => 1);
    const recorder = leg(instances[0] as string, 3);
    await decide(db, key, { legs: [recorder], callIds: [instances[0] as string] });
    assert.equal((await stored(key))?.level, 3);
    await db.insert(cdrRecords).values({
      session: randomUUID(),
      correlatorIndex: 1,
      recordIndex: 1,
      node: 'cms1',
      type: 'recordingStart',
      time: new Date().toISOString(),
      callId: instances[0] as string,
      callLegId: recorder.id as string,
      raw: {},
    });
    const recorded = await decide(db, key, { callIds: [instances[0] as string] });
    assert.equal(recorded.outcome.cost?.instancesReread, 0);
    assert.deepEqual(recorded.outcome.levelChanges, recorded.reference.levelChanges);
    assert.equal((await stored(key))?.level, 1);
    const rows = await db
      .select()
      .from(participantLevels)
      .where(inArray(participantLevels.legId, [recorder.id as string]));
    assert.deepEqual(rows, []);
  });

  test('a recompute naming the participants whose live view changed reads only their legs', async () => {
    const { key, instances } = await bigMeeting(() => 1);
    const guest = leg(instances[1] as string, 3, { guestConnection: true });
    await decide(db, key, { legs: [guest], callIds: [instances[1] as string] });
    assert.equal((await stored(key))?.level, 3);

    // The roster says the guest left before its callLegEnd arrived (roster-store marks its row 'left').
    await db.insert(callLegObservations).values({
      id: guest.id as string,
      callId: guest.callId as string,
      node: 'cms2',
      participantId: randomUUID(),
      state: 'left',
      deactivated: false,
      source: 'events',
    });
    const left = await decide(db, key, { callIds: instances, reread: true, liveIds: [guest.id as string] });
    assert.equal(left.outcome.cost?.instancesReread, 0);
    assert.equal(left.outcome.cost?.legsRead, 1);
    assert.deepEqual(left.outcome.levelChanges, left.reference.levelChanges);
    assert.deepEqual(
      left.outcome.levelChanges.map((c) => [c.oldLevel, c.newLevel]),
      [[3, 1]],
    );

    // A participant only the live view shows (read by polling: no grace), external: it counts, then it goes.
    const participant = randomUUID();
    await db.insert(callLegObservations).values({
      id: participant,
      callId: instances[3] as string,
      node: 'cms4',
      participantId: participant,
      remoteParty: 'someone@elsewhere.example',
      type: 'sip',
      state: 'connected',
      source: 'polling',
    });
    const joined = await decide(db, key, { callIds: [instances[3] as string], reread: true, liveIds: [participant] });
    assert.equal(joined.outcome.cost?.legsRead, 1);
    assert.deepEqual(joined.outcome.levelChanges, joined.reference.levelChanges);
    assert.equal((await stored(key))?.level, 3);
    await db.delete(callLegObservations).where(eq(callLegObservations.id, participant));
    const gone = await decide(db, key, { callIds: [instances[3] as string], reread: true, liveIds: [participant] });
    assert.equal(gone.outcome.cost?.legsRead, 0);
    assert.deepEqual(gone.outcome.levelChanges, gone.reference.levelChanges);
    assert.deepEqual(await stored(key), gone.reference.levels[0]);
    assert.equal((await stored(key))?.level, 1);
  });
});
