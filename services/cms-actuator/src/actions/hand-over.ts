import { CmsApiError, type CmsObject } from '@cms/cms';
import type { OperatorActionJobKind } from '@cms/queue';
import type { PeerWriter } from '../write-context.ts';
import { addStep } from './action-store.ts';
import type { StepIo } from './run-step.ts';

/**
 * A roster taken on one bridge lists the meeting's participants of every bridge, so an action on a leg known only
 * from the roster (no CDRs yet) may be sent to a bridge that does not host it. CMS says so: a participant write
 * answers participantCannotBeModified, a leg write callLegDoesNotExist. The hosting bridge is what CMS names in
 * GET /participants/<id> (`callBridge`, present when hosted elsewhere); the step is then handed to that node.
 */

/** True for the answers CMS gives to a write sent to a bridge that does not host the participant or leg. */
export function isOtherBridgesTarget(err: unknown): err is CmsApiError {
  return err instanceof CmsApiError && (err.failureReason === 'participantCannotBeModified' || err.failureReason === 'callLegDoesNotExist');
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

export interface HostingPeer {
  peer: PeerWriter;
  /** The participant's call instance on that bridge. */
  callId: string | null;
}

/**
 * The configured node hosting `participantId`, when CMS says it is another than this one; null when this bridge
 * hosts it, CMS no longer knows it, or the hosting bridge is none we hold credentials for. The callBridge GUID is
 * matched with cms.nodes[].callBridgeId; where that is not configured, the node that describes the participant
 * without a `callBridge` (its own) is the host.
 */
export async function hostingPeer(io: StepIo, participantId: string): Promise<HostingPeer | null> {
  const here = await io.read(() => io.ctx.client.getParticipant(participantId)).catch(ignoreNotFound);
  const callBridge = text(here?.callBridge);
  if (!callBridge) return null;
  const others = [...io.ctx.peers().values()].filter((peer) => peer.name !== io.ctx.node);
  const configured = others.find((peer) => peer.callBridgeId?.toLowerCase() === callBridge.toLowerCase());
  for (const peer of configured ? [configured] : others.filter((p) => !p.callBridgeId)) {
    const there = await io.read(() => peer.client.getParticipant(participantId)).catch(ignoreNotFound);
    if (there && !text(there.callBridge)) return { peer, callId: text(there.call) };
  }
  return null;
}

/** Adds a step of this action on `host`'s node with `params`, and queues it there; the action waits for it. */
export async function handOver(io: StepIo, host: HostingPeer, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { actionId } = io.step;
  const step = await addStep(io.ctx.db, actionId, { node: host.peer.name, callId: host.callId, params });
  await host.peer.enqueueAction({ kind: io.step.kind as OperatorActionJobKind, actionId, step });
  io.ctx.log.info({ node: io.ctx.node, actionId, to: host.peer.name, step }, 'operator action step handed to the hosting bridge');
  return { handedOverTo: host.peer.name, step };
}

function ignoreNotFound(err: unknown): CmsObject | null {
  if (err instanceof CmsApiError && err.isNotFound) return null;
  throw err;
}
