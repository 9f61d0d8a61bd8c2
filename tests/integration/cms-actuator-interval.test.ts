import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { callMessages } from '@cms/db';
import { type CmsWritesQueue, createCmsWritesQueue, enqueueCallMessageWrite } from '@cms/queue';
import { eq, sql } from 'drizzle-orm';
import { levelsOfMessageTexts } from '../../services/cms-actuator/src/write-call-message.ts';
import {
  actuatorTestBackends,
  closeActuators,
  oneNodeActuatorConfig,
  type StartedActuator,
  startOneBridgeSimulator,
  startTestActuator,
} from '../helpers/actuator.ts';
import { eventually } from '../helpers/infra.ts';

/**
 * actuator.messageMinIntervalMs between two writes to one call: an improvement waits for it (and later changes fold
 * into the waiting job), a change to a worse level does not (a level better than the truth is never held on screen
 * for it). The interval is a minute here, far longer than any wait below: a change written inside it was not held.
 */
const NODE = 'cms-1';
const INTERVAL_MS = 60_000;

const { sim, bridge } = await startOneBridgeSimulator(NODE, 'interval-test-pass');
const { db, redisUrl, basePrefix, producer } = await actuatorTestBackends();
let testNo = 0;
const running: StartedActuator[] = [];

async function startActuator(messages?: Record<string, { text: string }>): Promise<CmsWritesQueue> {
  const prefix = `${basePrefix}-${++testNo}`;
  const config = oneNodeActuatorConfig({
    redisUrl,
    prefix,
    node: NODE,
    bridge,
    overrides: { actuator: { messageMinIntervalMs: INTERVAL_MS }, ...(messages ? { policy: { messages } } : {}) },
  });
  const { service } = await startTestActuator(config, { db });
  const queue = createCmsWritesQueue(NODE, { connection: producer, prefix });
  running.push({ service, queue });
  return queue;
}

/** Stands in for the policy worker: the call's desired message at `level` (version bumped), then its write job. */
async function desire(queue: CmsWritesQueue, callId: string, level: number, text = `Security Level ${level}`): Promise<number> {
  const [row] = await db
    .insert(callMessages)
    .values({ callId, node: NODE, meetingKey: callId, level, messageText: text, messagePosition: 'bottom', messageDuration: 'permanent' })
    .onConflictDoUpdate({
      target: callMessages.callId,
      set: { level, messageText: text, version: sql`${callMessages.version} + 1`, desiredAt: sql`now()`, status: 'pending' },
    })
    .returning({ version: callMessages.version });
  await enqueueCallMessageWrite(queue, callId);
  return row!.version;
}

async function appliedVersion(callId: string): Promise<number | null> {
  const [row] = await db.select({ v: callMessages.appliedVersion }).from(callMessages).where(eq(callMessages.callId, callId));
  return row?.v ?? null;
}

const putTexts = (callId: string) => sim.writeLog({ method: 'PUT', urlContains: callId }).map((w) => w.params.messageText);

afterEach(async () => {
  await closeActuators(running);
});

describe('the least interval between two writes to one call', () => {
  test('a change to a worse level is written at once, inside the interval', async () => {
    const queue = await startActuator();
    const callId = sim.startCall({ name: 'guest admitted' }).callId();
    const first = await desire(queue, callId, 1);
    await eventually(async () => (await appliedVersion(callId)) === first, { what: 'level 1 written' });

    // A lobby guest admitted a moment later: the call shows level 1 while its meeting is at level 3.
    const worse = await desire(queue, callId, 3);
    await eventually(async () => (await appliedVersion(callId)) === worse, { what: 'level 3 written inside the interval' });
    assert.deepEqual(putTexts(callId), ['Security Level 1', 'Security Level 3']);
    assert.equal(sim.inspectCall(callId).messageText, 'Security Level 3');
  });

  test('an improvement inside the interval waits for it, and a later change folds into the waiting job', async () => {
    const queue = await startActuator();
    const callId = sim.startCall({ name: 'guest left' }).callId();
    const first = await desire(queue, callId, 3);
    await eventually(async () => (await appliedVersion(callId)) === first, { what: 'level 3 written' });

    await desire(queue, callId, 1);
    await eventually(async () => (await queue.getJobCounts('delayed')).delayed === 1, { what: 'the improvement held' });
    // Still better than what is shown (level 3): it joins the held job instead of being written.
    await desire(queue, callId, 2);
    assert.equal((await queue.getJobCounts('delayed')).delayed, 1);
    assert.equal((await queue.getJobCounts('wait')).wait, 0, 'the second change folded into the held job');
    assert.deepEqual(putTexts(callId), ['Security Level 3']);
    assert.equal(sim.inspectCall(callId).messageText, 'Security Level 3');
    assert.equal(await appliedVersion(callId), first);
  });

  test('a text that is not one level of the policy (here shared by two) says nothing: the change waits', async () => {
    // Levels 1 and 2 show the same text: a call showing it may be at level 2, so a change to 3 is no known step down.
    const queue = await startActuator({ 1: { text: 'Secure meeting' }, 2: { text: 'Secure meeting' }, 3: { text: 'Open meeting' } });
    const callId = sim.startCall({ name: 'shared text' }).callId();
    const first = await desire(queue, callId, 2, 'Secure meeting');
    await eventually(async () => (await appliedVersion(callId)) === first, { what: 'first text written' });

    await desire(queue, callId, 3, 'Open meeting');
    await eventually(async () => (await queue.getJobCounts('delayed')).delayed === 1, { what: 'the change held' });
    assert.deepEqual(putTexts(callId), ['Secure meeting']);
  });
});

test('levelsOfMessageTexts maps each text to its level and leaves out a text two levels share, and an empty one', () => {
  assert.deepEqual(
    [...levelsOfMessageTexts({ 1: { text: 'A' }, 2: { text: 'B' }, 3: { text: 'C' } })],
    [
      ['A', 1],
      ['B', 2],
      ['C', 3],
    ],
  );
  assert.deepEqual([...levelsOfMessageTexts({ 1: { text: 'A' }, 2: { text: 'A' }, 3: { text: 'C' } })], [['C', 3]]);
  assert.deepEqual(
    [...levelsOfMessageTexts({ 1: { text: '' }, 2: { text: 'B' }, 3: { text: 'C' } })],
    [
      ['B', 2],
      ['C', 3],
    ],
  );
});
