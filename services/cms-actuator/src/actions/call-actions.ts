import type { AddParticipantOptions, CallLegUpdate, ParticipantsBulkUpdate } from '@cms/cms';
import { knownParticipantId, newerLegFields, withTargetLock } from './action-store.ts';
import { handOver, hostingPeer, isOtherBridgesTarget } from './hand-over.ts';
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
 * PUT /callLegs/<id>: mutes and layout of one participant. Two quick actions on one leg (mute, then unmute) may
 * run in either order (the interactive lane takes the newest first, retries come back later): the operator's last
 * one must win. So the writes of one leg are sent one at a time, and a write leaves out the fields a later accepted
 * action sets; one with nothing left is not sent and is recorded as superseded (its result names by which action).
 */
export async function updateCallLeg(io: StepIo): Promise<Record<string, unknown> | null> {
  const { callLegId, fields } = io.step.params as { callLegId: string; fields: CallLegUpdate };
  type Outcome = { result: Record<string, unknown> | null } | { elsewhere: Error };
  const outcome = await withTargetLock(io.ctx.db, `callLeg:${callLegId}`, async (tx): Promise<Outcome> => {
    const newer = await newerLegFields(tx, io.step.actionId, callLegId);
    const left = Object.fromEntries(Object.entries(fields).filter(([field]) => !newer.has(field))) as CallLegUpdate;
    const superseded = Object.fromEntries(Object.keys(fields).flatMap((field) => (newer.has(field) ? [[field, newer.get(field)]] : [])));
    if (Object.keys(left).length > 0) {
      try {
        await io.write(() => io.ctx.client.updateCallLeg(callLegId, left));
      } catch (err) {
        if (isOtherBridgesTarget(err)) return { elsewhere: err };
        throw err;
      }
    }
    if (Object.keys(superseded).length === 0) return { result: null };
    io.ctx.log.info(
      { node: io.ctx.node, actionId: io.step.actionId, callLegId, superseded },
      'operator action: fields left to a later action',
    );
    return { result: { superseded: Object.keys(left).length === 0, supersededFields: superseded } };
  });
  if (!('elsewhere' in outcome)) return outcome.result;
  // Handed over outside the lock: the step on the hosting node takes it again, and checks for later actions there.
  return handOverLeg(io, callLegId, outcome.elsewhere);
}

/** PUT /calls/<id>/participants/*: the same mutes for everyone this bridge hosts in the call instance. */
export async function updateAllParticipants(io: StepIo): Promise<null> {
  const { callId, fields } = io.step.params as { callId: string; fields: ParticipantsBulkUpdate };
  await io.write(() => io.ctx.client.updateAllParticipants(callId, fields));
  return null;
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
