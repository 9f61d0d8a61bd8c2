export { type ParsedAddress, parseAddress, sipHost } from './address.ts';
export { classifyLeg } from './classify.ts';
export { type CompiledPolicy, compilePolicy } from './compile.ts';
export {
  type CallInstance,
  type CountedParticipant,
  countedParticipants,
  type DecideFromParticipantsInput,
  type DecideInput,
  type DesiredMessageRow,
  type DesiredMessageStatus,
  decideFromParticipants,
  decideMeetings,
  type LevelChange,
  type MeetingState,
  type MeetingsDecision,
  type MessageWrite,
  meetingsTouched,
  type ProvisionalMove,
  provisionalMoves,
  type StoredMeeting,
  type StoredMessage,
} from './decide.ts';
export { compileDomainList, type DomainList, matchesDomainList } from './domain-list.ts';
export { type MeetingLevel, meetingKey, meetingLevel } from './meeting.ts';
export { type CallMessage, type ClearMessage, clearMessage, desiredMessage, type ShowMessage } from './message.ts';
export { countsAsParticipant, type ParticipationReason, recorderOrStreamerLegIds } from './participants.ts';
export type { Classification, ClassificationRule, LegFacts, Level, PolicyConfig } from './types.ts';
