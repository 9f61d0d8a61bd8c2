/**
 * Matches what each call should have shown (expected-message transitions, stamped when the simulator generated the
 * causing CDR) against what CMS received (the simulator's write log, stamped on arrival).
 *
 * For every transition of a call to text T at time t, standing until the next transition (or the call's end):
 * - alreadyShown: the last write CMS accepted before t already set T (e.g. 3 -> 2 -> 3 in a blink): no write needed;
 * - written: the first accepted write of T inside that interval; its arrival minus t is one latency sample;
 * - superseded: the interval closed before any write of T arrived (coalesced away, or too slow to matter);
 * - neverWritten: the call's final expectation, never written (the final-message check counts it as wrong).
 * Every accepted write whose text was not what the call should show when it arrived is `stale`.
 */
import type { WriteLogEntry } from '@cms/cms-sim';
import type { TrackedCall } from './expected-messages.ts';

export interface Sample {
  meeting: string;
  callId: string;
  bridge: string;
  text: string;
  at: number;
  writtenAt: number;
  /** Arrival of the call's accepted write before the one that showed this change (possibly after the change); null if none. */
  previousWriteAt: number | null;
}

export interface LatencyAnalysis {
  transitions: number;
  alreadyShown: number;
  written: number;
  superseded: number;
  neverWritten: number;
  /** ms from the causing CDR's generation to the arrival of the write that showed it, one per `written`. */
  latenciesMs: number[];
  /** The `written` changes themselves, for breakdowns. */
  samples: Sample[];
  acceptedWrites: number;
  staleWrites: number;
  /** Accepted writes to calls the tracker never saw (should be 0). */
  unknownCallWrites: number;
}

const CALL_PATH = /^\/api\/v1\/calls\/([^/?]+)$/i;

/** The call id of a `PUT /api/v1/calls/<id>` (not its legs or participants), or null. */
function callIdOfWrite(entry: WriteLogEntry): string | null {
  if (entry.method !== 'PUT') return null;
  return CALL_PATH.exec(entry.url.split('?')[0] ?? '')?.[1] ?? null;
}

export function analyseLatency(calls: ReadonlyMap<string, TrackedCall>, writes: readonly WriteLogEntry[]): LatencyAnalysis {
  const result: LatencyAnalysis = {
    transitions: 0,
    alreadyShown: 0,
    written: 0,
    superseded: 0,
    neverWritten: 0,
    latenciesMs: [],
    samples: [],
    acceptedWrites: 0,
    staleWrites: 0,
    unknownCallWrites: 0,
  };
  const byCall = new Map<string, { at: number; text: string }[]>();
  for (const entry of writes) {
    const callId = callIdOfWrite(entry);
    if (!callId || entry.outcome !== 'applied' || entry.params.messageText === undefined) continue;
    result.acceptedWrites++;
    if (!calls.has(callId)) {
      result.unknownCallWrites++;
      continue;
    }
    let list = byCall.get(callId);
    if (!list) {
      list = [];
      byCall.set(callId, list);
    }
    list.push({ at: entry.atMs, text: entry.params.messageText });
  }

  for (const call of calls.values()) {
    const accepted = (byCall.get(call.callId) ?? []).sort((a, b) => a.at - b.at);
    const { transitions } = call;
    transitions.forEach((transition, i) => {
      result.transitions++;
      const until = transitions[i + 1]?.at ?? call.endedAt ?? Number.POSITIVE_INFINITY;
      const shownBefore = accepted.filter((w) => w.at < transition.at).at(-1)?.text ?? '';
      if (shownBefore === transition.text) {
        result.alreadyShown++;
        return;
      }
      const write = accepted.find((w) => w.at >= transition.at && w.at < until && w.text === transition.text);
      if (write) {
        result.written++;
        result.latenciesMs.push(write.at - transition.at);
        result.samples.push({
          meeting: call.meeting,
          callId: call.callId,
          bridge: call.bridge,
          text: transition.text,
          at: transition.at,
          writtenAt: write.at,
          previousWriteAt: accepted.filter((w) => w.at < write.at).at(-1)?.at ?? null,
        });
      } else if (until === Number.POSITIVE_INFINITY) {
        result.neverWritten++;
      } else {
        result.superseded++;
      }
    });
    for (const write of accepted) {
      const expected = transitions.filter((t) => t.at <= write.at).at(-1)?.text ?? '';
      if (expected !== write.text) result.staleWrites++;
    }
  }
  return result;
}

/** The most writes a bridge accepted within any one second. */
export function maxWritesInOneSecond(writes: readonly WriteLogEntry[]): number {
  return maxInOneSecond(writes.filter((w) => w.outcome === 'applied' && w.method !== 'GET').map((w) => w.atMs));
}

/** The most of `times` (ms) within any one second. */
export function maxInOneSecond(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= 1000) start++;
    max = Math.max(max, end - start + 1);
  }
  return max;
}

/** Nearest-rank percentile of `values` (ms). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
