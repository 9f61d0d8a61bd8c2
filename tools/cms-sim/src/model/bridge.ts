import type { Call, CallLeg, Participant } from './types.ts';

/** One simulated Call Bridge's model state. Its HTTP face lives in api/, its CDR sending in cdr/. */
export class BridgeState {
  readonly name: string;
  readonly callBridgeId: string;
  readonly sipDomain: string;
  /** GUID of this run of the bridge; replaced on restart. */
  session: string;
  /** Real ms of the last (re)start, for uptimeSeconds. */
  startedAt: number;
  restarts = 0;
  readonly calls = new Map<string, Call>();
  readonly legs = new Map<string, CallLeg>();
  /** Participants hosted here (their legs are on this bridge). */
  readonly participants = new Map<string, Participant>();
  legsCompleted = 0;
  legsMaxActive = 0;

  constructor(name: string, callBridgeId: string, session: string) {
    this.name = name;
    this.callBridgeId = callBridgeId;
    this.sipDomain = `${name}.sim.local`;
    this.session = session;
    this.startedAt = Date.now();
  }

  noteLegCount(): void {
    if (this.legs.size > this.legsMaxActive) this.legsMaxActive = this.legs.size;
  }
}
