import type { Logger } from '@cms/observability';

export interface TlsFiles {
  keyFile: string;
  certFile: string;
}

export interface BridgeOptions {
  name: string;
  /** 0 (default) = an ephemeral port. */
  port?: number;
  /** API user; default "admin". */
  username?: string;
  /** API password; default "admin". */
  password?: string;
  /** The Call Bridge GUID (stable across restarts); default derived from the seed. */
  callBridgeId?: string;
  /** Receivers for this bridge only (replaces the simulator-wide list). */
  cdrReceivers?: string[];
  tls?: TlsFiles;
}

export interface FaultOptions {
  /** Added to every API response. */
  latencyMs?: number;
  /** Extra random latency, uniform in [0, latencyJitterMs]. */
  latencyJitterMs?: number;
  /** Share of API requests answered 503 (0..1). */
  fraction503?: number;
  /** Writes (POST/PUT/DELETE) per sliding second above which a bridge answers 503; null = no ceiling. */
  maxWritesPerSecond?: number | null;
  /**
   * Answer every API request 403 once its credentials are accepted: an API user without the role (someone changed
   * the user's role on the MMP). Retrying does not help; clearing the fault is "someone fixed it".
   */
  forbidden?: boolean;
}

export interface CdrOptions {
  /** Most `<record>`s in one POST; default 20. */
  maxRecordsPerPost?: number;
  /** How long a bridge waits after a record for more to put in the same POST; default 25 ms. */
  flushDelayMs?: number;
  /** First re-send delay after a failed POST, doubled per failure; default 1000 ms. */
  resendInitialMs?: number;
  /** Longest re-send delay; default 30000 ms. */
  resendMaxMs?: number;
  /** Records buffered per receiver before the oldest are discarded; default 10000. */
  bufferLimit?: number;
  /** A POST not answered within this counts as failed; default 10000 ms. */
  requestTimeoutMs?: number;
  /** CA bundle for https receivers (verification always on). */
  caFile?: string;
}

export interface EventsOptions {
  /** WebSocket connections per bridge; CMS allows 5. */
  maxConnections?: number;
  /** Subscriptions per connection; CMS allows 100. */
  maxSubscriptions?: number;
  /** How long an auth token from POST /api/v1/authTokens stays valid; default 10 minutes. */
  tokenTtlMs?: number;
}

export type DeactivationMode = 'deactivate' | 'disconnect' | 'remainActivated';

export interface SimulatorOptions {
  /** Default: one bridge "cms-1". */
  bridges?: BridgeOptions[];
  /** Clustered bridges put `callBridge` on CDR envelopes and list each other; default true when > 1 bridge. */
  clustered?: boolean;
  /** Seed for every invented value; default random (see Simulator.seed). */
  seed?: number;
  /** Simulated-time speed factor (CDR times and durations); default 1. */
  speed?: number;
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Host name used in printed/returned URLs; default the listen host (127.0.0.1 when listening on 0.0.0.0). */
  advertisedHost?: string;
  /** Receiver URIs for every bridge (at most 4); "{bridge}" is replaced by the bridge name. */
  cdrReceivers?: string[];
  cdr?: CdrOptions;
  /** Most objects a collection GET returns whatever `limit` asks; default 10. */
  pageCap?: number;
  faults?: FaultOptions;
  /** Control API port; 0 (default) = ephemeral; null = no control API. */
  controlPort?: number | null;
  /** When set, the control API requires `Authorization: Bearer <controlToken>`. */
  controlToken?: string;
  /** HTTPS for every bridge (per-bridge `tls` wins). */
  tls?: TlsFiles;
  /** What happens to activated needsActivation legs when the last activator leaves; default "deactivate". */
  deactivationMode?: DeactivationMode;
  /** Simulated ms a dial-out (POST calls/<id>/callLegs or participants) rings before it connects; default 1000; null = only when the driver answers it. */
  dialOutAnswerMs?: number | null;
  events?: EventsOptions;
  /** Entries kept in the API write history; default 100000. */
  writeLogLimit?: number;
  /** Generated CDRs kept per bridge for inspection; default 100000. */
  recordLogLimit?: number;
  logger?: Logger;
}

export interface ResolvedCdrOptions {
  maxRecordsPerPost: number;
  flushDelayMs: number;
  resendInitialMs: number;
  resendMaxMs: number;
  bufferLimit: number;
  requestTimeoutMs: number;
  caFile: string | undefined;
}

export function resolveCdrOptions(cdr: CdrOptions = {}): ResolvedCdrOptions {
  const resolved = {
    maxRecordsPerPost: cdr.maxRecordsPerPost ?? 20,
    flushDelayMs: cdr.flushDelayMs ?? 25,
    resendInitialMs: cdr.resendInitialMs ?? 1000,
    resendMaxMs: cdr.resendMaxMs ?? 30_000,
    bufferLimit: cdr.bufferLimit ?? 10_000,
    requestTimeoutMs: cdr.requestTimeoutMs ?? 10_000,
    caFile: cdr.caFile,
  };
  if (resolved.maxRecordsPerPost < 1) throw new RangeError('cdr.maxRecordsPerPost must be >= 1');
  if (resolved.bufferLimit < 1) throw new RangeError('cdr.bufferLimit must be >= 1');
  return resolved;
}

export interface ResolvedFaults {
  latencyMs: number;
  latencyJitterMs: number;
  fraction503: number;
  maxWritesPerSecond: number | null;
  forbidden: boolean;
}

export function mergeFaults(base: ResolvedFaults, change: FaultOptions): ResolvedFaults {
  const next: ResolvedFaults = {
    latencyMs: change.latencyMs ?? base.latencyMs,
    latencyJitterMs: change.latencyJitterMs ?? base.latencyJitterMs,
    fraction503: change.fraction503 ?? base.fraction503,
    maxWritesPerSecond: change.maxWritesPerSecond === undefined ? base.maxWritesPerSecond : change.maxWritesPerSecond,
    forbidden: change.forbidden ?? base.forbidden,
  };
  if (next.latencyMs < 0 || next.latencyJitterMs < 0) throw new RangeError('latency must be >= 0');
  if (next.fraction503 < 0 || next.fraction503 > 1) throw new RangeError('fraction503 must be within 0..1');
  if (next.maxWritesPerSecond !== null && !(next.maxWritesPerSecond >= 0)) throw new RangeError('maxWritesPerSecond must be >= 0');
  return next;
}

export const NO_FAULTS: ResolvedFaults = { latencyMs: 0, latencyJitterMs: 0, fraction503: 0, maxWritesPerSecond: null, forbidden: false };
