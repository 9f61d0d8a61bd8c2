/** Simulator methods the control API exposes under POST /driver/<method> (synchronous, JSON-serialisable). */
export const DRIVER_METHODS = [
  'startCall',
  'join',
  'admit',
  'leave',
  'endCall',
  'updateCall',
  'updateCallLeg',
  'updateParticipant',
  'moveToLobby',
  'answerDialOut',
  'shareContent',
  'setActiveSpeaker',
  'failWrites',
  'clearWriteFailures',
  'record',
  'stream',
  'inspectCall',
  'cdrRecords',
] as const;

export type DriverMethod = (typeof DRIVER_METHODS)[number];
