import type { CmsObject } from '@cms/cms';
import { knownParticipantId } from './action-store.ts';
import type { StepIo } from './run-step.ts';

/**
 * The CMS participant id of a call leg, for requests CMS takes per participant (admit, importance, bulk filters):
 * what the live roster or the CDRs told us, else the leg's own `status/groupId` from CMS (a read, not a write).
 */
export async function participantIdOf(io: StepIo, callLegId: string, known: string | null = null): Promise<string | null> {
  const stored = known ?? (await knownParticipantId(io.ctx.db, callLegId));
  if (stored) return stored;
  const leg = await io.read(() => io.ctx.client.getCallLeg(callLegId));
  return groupIdOf(leg);
}

export function groupIdOf(leg: CmsObject): string | null {
  const status = leg.status;
  const groupId = status && typeof status === 'object' && !Array.isArray(status) ? status.groupId : undefined;
  return typeof groupId === 'string' && groupId !== '' ? groupId : null;
}
