import type { AddParticipantOptions, CallLegUpdate, ParticipantsBulkUpdate } from '@cms/cms';
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

/** PUT /callLegs/<id>: mutes and layout of one participant. */
export async function updateCallLeg(io: StepIo): Promise<null> {
  const { callLegId, fields } = io.step.params as { callLegId: string; fields: CallLegUpdate };
  await io.write(() => io.ctx.client.updateCallLeg(callLegId, fields));
  return null;
}

/** PUT /calls/<id>/participants/*: the same mutes for everyone this bridge hosts in the call instance. */
export async function updateAllParticipants(io: StepIo): Promise<null> {
  const { callId, fields } = io.step.params as { callId: string; fields: ParticipantsBulkUpdate };
  await io.write(() => io.ctx.client.updateAllParticipants(callId, fields));
  return null;
}

/** DELETE /callLegs/<id>: disconnects one participant. */
export async function deleteCallLeg(io: StepIo): Promise<null> {
  const { callLegId } = io.step.params as { callLegId: string };
  await io.write(() => io.ctx.client.deleteCallLeg(callLegId));
  return null;
}

/** DELETE /calls/<id>: ends this bridge's instance of the meeting. */
export async function deleteCall(io: StepIo): Promise<null> {
  const { callId } = io.step.params as { callId: string };
  await io.write(() => io.ctx.client.deleteCall(callId));
  return null;
}
