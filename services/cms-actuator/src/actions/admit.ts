import { participantIdOf } from './participant-id.ts';
import type { StepIo } from './run-step.ts';

interface AdmitParams {
  legs: { callLegId: string; participantId: string | null }[];
}

/**
 * PUT /participants/<id> deactivated=false for each lobby participant this node hosts. One write per participant:
 * CMS documents admitting per participant, not in bulk.
 */
export async function admitParticipants(io: StepIo): Promise<Record<string, unknown>> {
  const { legs } = io.step.params as unknown as AdmitParams;
  const admitted: string[] = [];
  for (const leg of legs) {
    const participantId = await participantIdOf(io, leg.callLegId, leg.participantId);
    if (!participantId) continue; // CMS no longer knows the leg: it left the lobby on its own
    await io.write(() => io.ctx.client.updateParticipant(participantId, { deactivated: false }));
    admitted.push(leg.callLegId);
  }
  return { admitted };
}
