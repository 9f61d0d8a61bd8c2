import { type AddParticipantOptions, type CallLegUpdate, CmsApiError, MAX_FILTER_IDS, type ParticipantsBulkUpdate } from '@cms/cms';
import { callLock, knownParticipantId, laterLegActions, newerLegFields, withTargetLock } from './action-store.ts';
import { handOver, hostingPeer, isOtherBridgesTarget } from './hand-over.ts';
import { groupIdOf } from './participant-id.ts';
import type { StepIo } from './run-step.ts';

/**
 * The operator actions that are one CMS write each, on the node hosting the call instance or leg. What to write
 * was resolved and checked by the records API when it accepted the action (operator_action_steps.params).
 */

interface AddParticipantParams {
  callId: string;
  remoteParty: string;
  options: AddParticipantOptions;
}

/** POST /calls/<id>/participants (dial out); the result names the new participant and, when CMS lists it, its leg. */
export async function addParticipant(io: StepIo): Promise<Record<string, unknown>> {
  const { callId, remoteParty, options } = io.step.params as unknown as AddParticipantParams;
  const participantId = await io.write(() => io.ctx.client.addParticipant(callId, remoteParty, options));
  // The leg id lets the operator act on the new participant at once; CMS may not list it yet (or at all, when the
  // participant was placed on another bridge), which is not a failure of the dial-out.
  let callLegId: string | null = null;
  try {
    const page = await io.read(() => io.ctx.client.listCallLegs(callId, { participantFilter: participantId }));
    callLegId = page.items[0]?.id ?? null;
  } catch (err) {
    io.ctx.log.debug({ node: io.ctx.node, callId, participantId, err }, 'new participant leg not looked up');
  }
  return { participantId, callLegId };
}

/**
 * PUT /callLegs/<id>: mutes and layout of one participant. Two quick actions on one leg (mute, then unmute, or a
 * mute of everyone and an unmute of one) may run in either order (the interactive lane takes the newest first,
 * retries come back later): the operator's last one must win. So a write leaves out the fields a later accepted
 * action on the leg or on everyone in its meeting sets, and the writes of one call instance are sent one at a time
 * (the check and the PUT under the call's lock, which the writes to everyone take too, so a later action cannot
 * write in between); a write with nothing left is not sent and is recorded as superseded (its result names by
 * which actions).
 */
export async function updateCallLeg(io: StepIo): Promise<Record<string, unknown> | null> {
  const { callLegId, fields } = io.step.params as { callLegId: string; fields: CallLegUpdate };
  // A first look without the lock: a wholly superseded write takes no place under the node's write ceiling.
  let plan = planLegWrite(fields, await newerLegFields(io.ctx.db, io.step.actionId, callLegId));
  if (Object.keys(plan.left).length > 0) {
    try {
      // The lock is taken once the write has its place under the ceiling: it is held for the PUT only.
      await io.write(() =>
        withTargetLock(io.ctx.db, callLock(io.step.callId, callLegId), async (tx) => {
          plan = planLegWrite(fields, await newerLegFields(tx, io.step.actionId, callLegId));
          if (Object.keys(plan.left).length > 0) await io.ctx.client.updateCallLeg(callLegId, plan.left);
        }),
      );
    } catch (err) {
      if (!isOtherBridgesTarget(err)) throw err;
      return handOverLeg(io, callLegId, err);
    }
  }
  if (Object.keys(plan.superseded).length === 0) return null;
  const superseded = Object.keys(plan.left).length === 0;
  io.ctx.log.info(
    { node: io.ctx.node, actionId: io.step.actionId, callLegId, supersededFields: plan.superseded, superseded },
    'operator action: fields left to a later action',
  );
  return { superseded, supersededFields: plan.superseded };
}

/** The fields still to write, and each left out with the later action that sets it. */
function planLegWrite(fields: CallLegUpdate, newer: Map<string, number>) {
  const left = Object.fromEntries(Object.entries(fields).filter(([field]) => !newer.has(field))) as CallLegUpdate;
  const superseded: Record<string, number> = {};
  for (const field of Object.keys(fields)) {
    const by = newer.get(field);
    if (by !== undefined) superseded[field] = by;
  }
  return { left, superseded };
}

/**
 * PUT /calls/<id>/participants/*: the same mutes and layout for everyone this bridge hosts in the call instance.
 * A leg that a later accepted action of its own sets some of these fields on keeps what that action asked: it is
 * left out of the write to everyone (`filterIds`, exclude mode) and given the other fields with a write of its own.
 * CMS takes at most MAX_FILTER_IDS ids: beyond that, everyone is written and the later actions already written are
 * written again (the others write after this one anyway). Under the call's lock, as the per-leg writes.
 */
export async function updateAllParticipants(io: StepIo): Promise<Record<string, unknown> | null> {
  const { callId, fields } = io.step.params as { callId: string; fields: ParticipantsBulkUpdate };
  // What the write left to later actions (set inside the lock).
  const outcome: { kept: Record<string, Record<string, number>> | null } = { kept: null };
  await io.write(() =>
    withTargetLock(io.ctx.db, callLock(callId), async (tx) => {
      const later = [...(await laterLegActions(tx, io.step.actionId, callId))]
        .map(([callLegId, byField]) => ({ callLegId, byField: new Map([...byField].filter(([field]) => field in fields)) }))
        .filter((leg) => leg.byField.size > 0);
      if (later.length === 0) return io.ctx.client.updateAllParticipants(callId, fields);
      outcome.kept = Object.fromEntries(
        later.map((l) => [l.callLegId, Object.fromEntries([...l.byField].map(([f, v]) => [f, v.actionId]))]),
      );
      if (later.length > MAX_FILTER_IDS) {
        await io.ctx.client.updateAllParticipants(callId, fields);
        for (const leg of later) {
          const again = Object.fromEntries([...leg.byField].filter(([, v]) => v.applied).map(([f, v]) => [f, v.value])) as CallLegUpdate;
          if (Object.keys(again).length) await onThisBridge(() => io.write(() => io.ctx.client.updateCallLeg(leg.callLegId, again)));
        }
        return;
      }
      const excluded: string[] = [];
      for (const leg of later) {
        // Through `tx` only, or CMS's own word on the leg (withTargetLock: no second pool connection under the lock).
        const participantId =
          (await knownParticipantId(tx, leg.callLegId)) ??
          (await onThisBridge(async () => groupIdOf(await io.read(() => io.ctx.client.getCallLeg(leg.callLegId)))));
        if (participantId) excluded.push(participantId);
      }
      await io.ctx.client.updateAllParticipants(callId, { ...fields, filterIds: excluded });
      for (const leg of later) {
        const rest = Object.fromEntries(Object.entries(fields).filter(([field]) => !leg.byField.has(field))) as CallLegUpdate;
        if (Object.keys(rest).length) await onThisBridge(() => io.write(() => io.ctx.client.updateCallLeg(leg.callLegId, rest)));
      }
    }),
  );
  if (!outcome.kept) return null;
  io.ctx.log.info(
    { node: io.ctx.node, actionId: io.step.actionId, callId, keptByLaterActions: outcome.kept },
    'operator action: legs left to later actions',
  );
  return { keptByLaterActions: outcome.kept };
}

/** A request about a leg this bridge may not host (a leg another bridge hosts is the other bridge's step): null then. */
async function onThisBridge<T>(request: () => Promise<T>): Promise<T | null> {
  try {
    return await request();
  } catch (err) {
    if (isOtherBridgesTarget(err) || (err instanceof CmsApiError && err.isNotFound)) return null;
    throw err;
  }
}

/** DELETE /callLegs/<id>: disconnects one participant. */
export async function deleteCallLeg(io: StepIo): Promise<Record<string, unknown> | null> {
  const { callLegId } = io.step.params as { callLegId: string };
  return onHostingBridge(io, callLegId, () => io.ctx.client.deleteCallLeg(callLegId));
}

/** DELETE /calls/<id>: ends this bridge's instance of the meeting. */
export async function deleteCall(io: StepIo): Promise<null> {
  const { callId } = io.step.params as { callId: string };
  await io.write(() => io.ctx.client.deleteCall(callId));
  return null;
}

/**
 * Sends a write of one leg; when this bridge does not host it (a leg only the roster knows, placed on the bridge
 * whose roster listed it), the step is handed to the node CMS names as hosting the leg's participant.
 */
async function onHostingBridge(io: StepIo, callLegId: string, write: () => Promise<unknown>): Promise<Record<string, unknown> | null> {
  try {
    await io.write(write);
    return null;
  } catch (err) {
    if (!isOtherBridgesTarget(err)) throw err;
    return handOverLeg(io, callLegId, err);
  }
}

/** Hands the step to the node hosting the leg's participant, or fails with CMS's answer `err` when none is known. */
async function handOverLeg(io: StepIo, callLegId: string, err: Error): Promise<Record<string, unknown>> {
  const participantId = await knownParticipantId(io.ctx.db, callLegId);
  const host = participantId ? await hostingPeer(io, participantId) : null;
  if (!host) throw err;
  return handOver(io, host, io.step.params);
}
