/**
 * The values of every status column we write, each as one const array (the single source: the column types in
 * schema.ts, the services that write them and the records API's OpenAPI enums all come from these).
 */

/**
 * `call_messages.status`: where the desired message of a call stands.
 * - pending: a write is due (the actuator has a job for it, or its sweep will make one)
 * - applied: CMS shows this version
 * - unchanged: CMS already showed this version, so nothing was written
 * - callEnded: CMS no longer has the call; no version can be shown
 * - deadLettered: CMS refused this version or kept failing; a newer version gets its own chance
 * - unplaced: no CMS node is known for the call yet (placement will find it)
 * - unmanaged: the call's node is not in cms.nodes (we hold no credentials for it): nothing is written
 */
export const CALL_MESSAGE_STATUSES = ['pending', 'applied', 'unchanged', 'callEnded', 'deadLettered', 'unplaced', 'unmanaged'] as const;
export type CallMessageStatus = (typeof CALL_MESSAGE_STATUSES)[number];

/**
 * `cms_writes.status`: the outcome of one CMS write job's attempts.
 * - applied: CMS took the PUT
 * - unchanged: CMS already showed the message (no PUT)
 * - callEnded: CMS no longer has the call (404)
 * - deadLettered: CMS refused the write (4xx) or it kept failing until its attempts ran out
 * - retrying: it failed (5xx, timeout) or CMS was busy (503), and it will be tried again
 * - held: CMS refused our credentials or certificate: the node's writes are held until it accepts them again
 */
export const CMS_WRITE_STATUSES = ['applied', 'unchanged', 'callEnded', 'deadLettered', 'retrying', 'held'] as const;
export type CmsWriteStatus = (typeof CMS_WRITE_STATUSES)[number];

/**
 * `operator_actions.kind` (and the write-job kind of each of its steps): what an operator asked for.
 * - addParticipant: dial out (POST /calls/<id>/participants)
 * - updateCallLeg: mute/unmute or layout of one participant (PUT /callLegs/<id>)
 * - updateAllParticipants: the same for everyone of the meeting (PUT /calls/<id>/participants/*, every instance)
 * - presenterOn / presenterOff: everyone but the presenter speakerOnly and audio-muted; off restores what it changed
 * - deleteCallLeg: disconnect one participant; deleteCall: end the meeting (every instance)
 * - admitParticipants: let participants in from the lobby (PUT /participants/<id> deactivated=false)
 */
export const OPERATOR_ACTION_KINDS = [
  'addParticipant',
  'updateCallLeg',
  'updateAllParticipants',
  'presenterOn',
  'presenterOff',
  'deleteCallLeg',
  'deleteCall',
  'admitParticipants',
] as const;
export type OperatorActionKind = (typeof OPERATOR_ACTION_KINDS)[number];

/**
 * `operator_actions.status` and `operator_action_steps.status`.
 * - queued: accepted, on the node's write queue (or being written, or waiting to be retried)
 * - applied: CMS took every write of it
 * - failed: CMS refused it (its failureDetails are kept) or it could not be written
 */
export const OPERATOR_ACTION_STATUSES = ['queued', 'applied', 'failed'] as const;
export type OperatorActionStatus = (typeof OPERATOR_ACTION_STATUSES)[number];

/** `cms_writes.kind`: what was written (call messages, and each operator action kind). */
export const CMS_WRITE_KINDS = ['callMessage', ...OPERATOR_ACTION_KINDS] as const;
export type CmsWriteKind = (typeof CMS_WRITE_KINDS)[number];

/**
 * `call_leg_observations.source`: which channel last told us a leg's live state.
 * - events: the CMS events feed (callRoster), within about a second of the change on the bridge
 * - polling: the actuator's paced API reads (reconciliation), where the events feed is unavailable
 */
export const OBSERVATION_SOURCES = ['events', 'polling'] as const;
export type ObservationSource = (typeof OBSERVATION_SOURCES)[number];

/**
 * `cms_node_status.mode`: how the actuator follows a CMS node's live state.
 * - events: the events feed is connected and subscribed
 * - polling: the feed is unavailable (refused, old CMS, port blocked); paced polling carries on alone
 * - unreachable: neither the feed nor the API answers
 */
export const CMS_NODE_MODES = ['events', 'polling', 'unreachable'] as const;
export type CmsNodeMode = (typeof CMS_NODE_MODES)[number];
