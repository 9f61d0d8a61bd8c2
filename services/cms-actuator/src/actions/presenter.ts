import { type CmsCallLeg, type CmsObject, MAX_FILTER_IDS } from '@cms/cms';
import { forgetLegStates, type SavedLeg, type SavedLegState, savedLegStates, saveLegStates } from './action-store.ts';
import { groupIdOf, participantIdOf } from './participant-id.ts';
import type { StepIo } from './run-step.ts';

/**
 * Presenter mode as operators know it (CMS has no primitive for it): everyone but the presenter sees only the
 * speaker and is audio-muted (rxAudioMute: the others stop hearing them); the presenter gets a high importance so
 * every layout shows them. What it changes on each leg is saved first, so turning it off restores exactly that.
 */

/** Importance given to the presenter; CMS puts higher importance first. */
const PRESENTER_IMPORTANCE = 1000;

interface PresenterParams {
  meetingKey: string;
  callId: string;
  presenterLegId: string;
  /** Set on the step of the node that hosts the presenter. */
  presenterHere: boolean;
}

function configurationOf(leg: CmsObject): CmsObject {
  const c = leg.configuration;
  return c && typeof c === 'object' && !Array.isArray(c) ? c : {};
}

function bool(value: unknown): boolean {
  return value === true || value === 'true';
}

function textOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The people's legs of a call instance on this bridge (links to other bridges are not people). */
async function peopleLegs(io: StepIo, callId: string): Promise<CmsCallLeg[]> {
  const ids: string[] = [];
  for await (const leg of io.ctx.client.allCallLegs(callId)) ids.push(leg.id);
  const legs = await io.read(() => Promise.all(ids.map((id) => io.ctx.client.getCallLeg(id).catch(() => null))));
  return legs.filter((leg): leg is CmsCallLeg => leg !== null && leg.subType !== 'distributionLink');
}

export async function presenterOn(io: StepIo): Promise<Record<string, unknown>> {
  const { meetingKey, callId, presenterLegId, presenterHere } = io.step.params as unknown as PresenterParams;
  const legs = await peopleLegs(io, callId);
  const saved: SavedLeg[] = [];
  let presenterParticipant: string | null = null;
  for (const leg of legs) {
    const config = configurationOf(leg);
    const participantId = groupIdOf(leg);
    if (leg.id === presenterLegId) {
      presenterParticipant = participantId;
      continue;
    }
    saved.push({
      callLegId: leg.id,
      participantId,
      previous: { chosenLayout: textOrNull(config.chosenLayout), rxAudioMute: bool(config.rxAudioMute) },
    });
  }
  const where = { meetingKey, node: io.ctx.node, callId, actionId: io.step.actionId };
  if (presenterHere) {
    presenterParticipant ??= await participantIdOf(io, presenterLegId);
    const presenter = legs.find((leg) => leg.id === presenterLegId);
    const previous: SavedLegState = { presenter: true, rxAudioMute: presenter ? bool(configurationOf(presenter).rxAudioMute) : false };
    if (presenterParticipant) {
      const participant = await io.read(() => io.ctx.client.getParticipant(presenterParticipant as string));
      previous.importance = importanceOf(participant);
    }
    saved.push({ callLegId: presenterLegId, participantId: presenterParticipant, previous });
  }
  await saveLegStates(io.ctx.db, where, saved);
  // One write for everyone this bridge hosts, the presenter left out by participant id.
  await io.write(() =>
    io.ctx.client.updateAllParticipants(callId, {
      chosenLayout: 'speakerOnly',
      rxAudioMute: true,
      ...(presenterHere && presenterParticipant ? { filterIds: [presenterParticipant], mode: 'exclude' as const } : {}),
    }),
  );
  if (presenterHere) {
    if (presenterParticipant) {
      const id = presenterParticipant;
      await io.write(() => io.ctx.client.updateParticipant(id, { importance: PRESENTER_IMPORTANCE }));
    }
    await io.write(() => io.ctx.client.updateCallLeg(presenterLegId, { rxAudioMute: false }));
  }
  return { changedLegs: saved.length };
}

/** CMS 3.x puts importance under configuration; older answers (and our simulator before) at the top level. */
function importanceOf(participant: CmsObject): number | null {
  const value = configurationOf(participant).importance ?? participant.importance;
  const n = Number(value);
  return value === undefined || value === '' || !Number.isFinite(n) ? null : n;
}

export async function presenterOff(io: StepIo): Promise<Record<string, unknown>> {
  const { meetingKey, callId } = io.step.params as unknown as PresenterParams;
  const saved = await savedLegStates(io.ctx.db, meetingKey, io.ctx.node, callId);
  // Legs that had the same layout and mute get them back in one bulk write (at most 20 participants each).
  const groups = new Map<string, { previous: SavedLegState; participants: string[]; legs: string[] }>();
  let restored = 0;
  for (const leg of saved) {
    if (leg.previous.presenter === true) continue;
    const key = JSON.stringify([leg.previous.chosenLayout, leg.previous.rxAudioMute]);
    const group = groups.get(key) ?? { previous: leg.previous, participants: [], legs: [] };
    if (leg.participantId) group.participants.push(leg.participantId);
    else group.legs.push(leg.callLegId);
    groups.set(key, group);
  }
  for (const { previous, participants, legs } of groups.values()) {
    const fields = { chosenLayout: (previous.chosenLayout as string | null) ?? '', rxAudioMute: previous.rxAudioMute === true };
    for (let i = 0; i < participants.length; i += MAX_FILTER_IDS) {
      const filterIds = participants.slice(i, i + MAX_FILTER_IDS);
      await io.write(() => io.ctx.client.updateAllParticipants(callId, { ...fields, filterIds, mode: 'selected' }));
    }
    for (const legId of legs) {
      await io.write(() => io.ctx.client.updateCallLeg(legId, fields).catch(ignoreGone));
    }
    restored += participants.length + legs.length;
  }
  const presenter = saved.find((leg) => leg.previous.presenter === true);
  if (presenter) {
    if (presenter.participantId) {
      const id = presenter.participantId;
      const importance = typeof presenter.previous.importance === 'number' ? presenter.previous.importance : '';
      await io.write(() => io.ctx.client.updateParticipant(id, { importance }).catch(ignoreGone));
    }
    if (presenter.previous.rxAudioMute === true) {
      await io.write(() => io.ctx.client.updateCallLeg(presenter.callLegId, { rxAudioMute: true }).catch(ignoreGone));
    }
    restored++;
  }
  await forgetLegStates(io.ctx.db, meetingKey, io.ctx.node, callId);
  return { restoredLegs: restored };
}

/** A leg or participant that left meanwhile has nothing left to restore. */
function ignoreGone(err: unknown): void {
  if (err && typeof err === 'object' && 'isNotFound' in err && err.isNotFound) return;
  throw err;
}
