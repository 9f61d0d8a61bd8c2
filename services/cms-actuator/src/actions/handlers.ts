import type { OperatorActionJobKind } from '@cms/queue';
import { admitParticipants } from './admit.ts';
import { addParticipant, deleteCall, deleteCallLeg, updateAllParticipants, updateCallLeg } from './call-actions.ts';
import { presenterOff, presenterOn } from './presenter.ts';
import { stepHandler } from './run-step.ts';

/** The write job handler of each operator action kind (node-writer.ts puts them beside callMessage). */
export const ACTION_HANDLERS: { [K in OperatorActionJobKind]: ReturnType<typeof stepHandler> } = {
  // A dial-out that timed out may have rung someone: it is reported failed, never sent twice.
  addParticipant: stepHandler(addParticipant, { retrySafe: false }),
  updateCallLeg: stepHandler(updateCallLeg, { retrySafe: true }),
  updateAllParticipants: stepHandler(updateAllParticipants, { retrySafe: true }),
  presenterOn: stepHandler(presenterOn, { retrySafe: true }),
  presenterOff: stepHandler(presenterOff, { retrySafe: true }),
  deleteCallLeg: stepHandler(deleteCallLeg, { retrySafe: true }),
  deleteCall: stepHandler(deleteCall, { retrySafe: true }),
  admitParticipants: stepHandler(admitParticipants, { retrySafe: true }),
};
