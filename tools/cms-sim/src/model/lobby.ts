import type { DeactivationMode } from '../options.ts';
import { type CallLeg, isPersonLeg } from './types.ts';

/**
 * CMS lobby rules. A leg with needsActivation waits deactivated until an "activator" (a leg without
 * needsActivation) is in the meeting, unless an operator admits it (PUT participants deactivated=false).
 * A locked call sends new needsActivation legs to the lobby even when an activator is present; legs already
 * in the call stay. When the last activator leaves, the deactivationMode decides what happens to the others.
 */

export function isActivator(leg: CallLeg): boolean {
  return inCall(leg) && !leg.configuration.needsActivation && !leg.heldInLobby;
}

/** A person's leg that is in its call and answered: a dial-out still ringing is neither activator nor in the lobby. */
function inCall(leg: CallLeg): boolean {
  return isPersonLeg(leg) && !leg.ended && leg.callId !== null && leg.state === 'connected';
}

export function joinsDeactivated(leg: CallLeg, locked: boolean, activatorPresent: boolean): boolean {
  if (!leg.configuration.needsActivation || leg.admitted) return false;
  return locked || !activatorPresent;
}

export type LobbyAction = { leg: CallLeg; action: 'activate' | 'deactivate' | 'disconnect' };

/** What must change for the legs of one meeting (legs in the call, not ended) after anything lobby-relevant changed. */
export function lobbyActions(legs: readonly CallLeg[], locked: boolean, mode: DeactivationMode): LobbyAction[] {
  const activatorPresent = legs.some(isActivator);
  const actions: LobbyAction[] = [];
  for (const leg of legs) {
    if (!inCall(leg)) continue;
    const desired = desiredState(leg, locked, activatorPresent, mode);
    if (desired === 'disconnect') actions.push({ leg, action: 'disconnect' });
    else if (desired === 'deactivated' && !leg.deactivated) actions.push({ leg, action: 'deactivate' });
    else if (desired === 'active' && leg.deactivated) actions.push({ leg, action: 'activate' });
  }
  return actions;
}

function desiredState(
  leg: CallLeg,
  locked: boolean,
  activatorPresent: boolean,
  mode: DeactivationMode,
): 'active' | 'deactivated' | 'disconnect' {
  if (leg.heldInLobby) return 'deactivated';
  if (!leg.configuration.needsActivation || leg.admitted) return 'active';
  if (leg.deactivated) return activatorPresent && !locked ? 'active' : 'deactivated';
  if (activatorPresent) return 'active';
  if (mode === 'remainActivated') return 'active';
  return mode === 'disconnect' ? 'disconnect' : 'deactivated';
}
