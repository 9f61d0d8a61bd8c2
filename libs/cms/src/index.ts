export {
  CmsClient,
  type CmsClientOptions,
  type CmsNodeConnection,
  type CmsRequest,
  type CmsResponse,
  encodeForm,
  MAX_FILTER_IDS,
} from './client.ts';
export { CmsApiError, type CmsApiErrorInit, type CmsTransportFailure } from './errors.ts';
export { callMessageUpdate, callMessageVisible, callShowsMessage, type DesiredCallMessage, isClearMessage } from './message-on-screen.ts';
export type {
  AddParticipantOptions,
  CallLegUpdate,
  CallUpdate,
  CmsCall,
  CmsCallLeg,
  CmsCallLegSummary,
  CmsCallSummary,
  CmsListQuery,
  CmsPage,
  FormFields,
  Layout,
  MessagePosition,
  ParticipantsBulkUpdate,
  ParticipantUpdate,
} from './types.ts';
export { LAYOUTS } from './types.ts';
export { type CmsObject, type CmsValue, parseCmsXml } from './xml.ts';
