import { type HostingPeer, handOver, hostingPeer, isOtherBridgesTarget } from './hand-over.ts';
import { participantIdOf } from './participant-id.ts';
import type { StepIo } from './run-step.ts';

interface AdmitParams {
  legs: { callLegId: string; participantId: string | null }[];
}

/**
 * PUT /participants/<id> deactivated=false for each lobby participant this node hosts. One write per participant:
 * CMS documents admitting per participant, not in bulk. A participant that only the roster knows may be hosted by
 * another bridge (participantCannotBeModified here): it is handed to the hosting bridge's node (hand-over.ts).
 */
export async function admitParticipants(io: StepIo): Promise<Record<string, unknown>> {
  const { legs } = io.step.params as unknown as AdmitParams;
  const admitted: string[] = [];
  const elsewhere = new Map<string, { host: HostingPeer; legs: AdmitParams['legs'] }>();
  for (const leg of legs) {
    const participantId = await participantIdOf(io, leg.callLegId, leg.participantId);
    if (!participantId) continue; // CMS no longer knows the leg: it left the lobby on its own
    try {
      await io.write(() => io.ctx.client.updateParticipant(participantId, { deactivated: false }));
      admitted.push(leg.callLegId);
    } catch (err) {
      const host = isOtherBridgesTarget(err) ? await hostingPeer(io, participantId) : null;
      if (!host) throw err;
      const group = elsewhere.get(host.peer.name) ?? { host, legs: [] };
      group.legs.push({ callLegId: leg.callLegId, participantId });
      elsewhere.set(host.peer.name, group);
    }
  }
  const handedOver: Record<string, unknown>[] = [];
  for (const group of elsewhere.values()) handedOver.push(await handOver(io, group.host, { legs: group.legs }));
  return handedOver.length > 0 ? { admitted, handedOver } : { admitted };
}
