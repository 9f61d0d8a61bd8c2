export { basicAuthHeader } from './api/auth.ts';
export type { ApiCounters, ApiRequestEntry, ArmedWriteFailure, WriteFailureSpec } from './api/faults.ts';
export type { WriteLogEntry, WriteLogFilter, WriteOutcome } from './api/writeLog.ts';
export { MAX_CDR_RECEIVERS } from './cdr/pipeline.ts';
export type { SimRecord } from './cdr/records.ts';
export type { ReceiverStats } from './cdr/sender.ts';
export { CdrDeliveryTimeoutError, CmsFailure, ScenarioError, SimulatorError } from './errors.ts';
export type { ConnectionStats } from './events/connection.ts';
export type { EventsStats } from './events/hub.ts';
export type { LegQuality, RosterElement } from './model/changes.ts';
export type { CallUpdate, LegUpdate, MeetingSpec, ParticipantUpdate } from './model/cluster.ts';
export { CALL_LEG_END_REASONS, LAYOUTS } from './model/types.ts';
export type {
  BridgeOptions,
  CdrOptions,
  DeactivationMode,
  EventsOptions,
  FaultOptions,
  SimulatorOptions,
  TlsFiles,
} from './options.ts';
export { loadScenario, parseLoadArgument, parseScenarioText } from './scenario/parse.ts';
export { buildPlan, type JoinStep, joinOptions, type PlanStep } from './scenario/plan.ts';
export type {
  LoadSpec,
  MeetingScenario,
  Scenario,
  ScenarioInput,
  ScenarioReport,
  ScenarioRunOptions,
  TimelineStep,
} from './scenario/types.ts';
export {
  type BridgeInfo,
  type BridgeInspection,
  type CallInspection,
  type CdrStat,
  type Inspection,
  type JoinOptions,
  type JoinResult,
  type LegInspection,
  type MeetingHandle,
  type RestartOptions,
  Simulator,
  type StartCallOptions,
  startSimulator,
  type WriteFailureOptions,
} from './simulator.ts';
export { mulberry32 } from './util/prng.ts';
