import { LAYOUTS } from '@cms/cms';
import { presenterModes, presenterSavedLegs } from '@cms/db';
import { HttpProblem } from '@cms/http';
import { eq } from 'drizzle-orm';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../auth.ts';
import {
  activeCall,
  type CallTarget,
  configuredNodes,
  legsOfMeeting,
  meetingInstances,
  presenterModeOf,
} from '../operator-actions/targets.ts';
import { actionSchema } from '../operator-actions/view.ts';
import { bearerSecurity, errorResponses } from '../schemas.ts';
import type { OperatorActionOptions } from './actions.ts';

/**
 * Call control: operator actions on live calls (records-api -> the node's write queue -> cms-actuator -> CMS).
 * Bodies use Cisco's field names. Every route needs the operator role; each checks its request against what the
 * API knows (call, leg, node, lobby) before anything is stored, so a bad request touches nothing.
 */

const idParam = { type: 'string', minLength: 1, maxLength: 256 } as const;
const callParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: idParam } } as const;
const legParams = {
  type: 'object',
  required: ['id', 'legId'],
  additionalProperties: false,
  properties: { id: idParam, legId: { ...idParam, description: 'The callLeg id, as GET /api/v1/calls/<id> lists it.' } },
} as const;

const layout = { type: 'string', enum: [...LAYOUTS], description: "A layout name from Cisco's list." } as const;
const mutes = {
  rxAudioMute: { type: 'boolean', description: 'true: the others stop hearing this participant.' },
  txAudioMute: { type: 'boolean', description: 'true: this participant stops hearing the meeting.' },
  rxVideoMute: { type: 'boolean', description: 'true: the others stop seeing this participant.' },
  txVideoMute: { type: 'boolean', description: 'true: this participant stops seeing the meeting.' },
} as const;

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: 'problem#' } } } });

export const actionResponses = {
  200: {
    description: 'The action finished within the short wait: its outcome (status applied or failed, with CMS’s failureDetails).',
    ...actionSchema,
  },
  202: { description: 'Accepted and queued: follow it at Location (GET /api/v1/actions/<id>).', ...actionSchema },
  ...errorResponses,
  404: problem('No such call or call leg (or the leg is not in this call).'),
  409: problem('The call or leg cannot be acted on now: ended, not in the lobby, on an unconfigured node, presenter mode already on/off.'),
  422: problem('The Idempotency-Key was used before for a different request.'),
  503: problem('The write queue (Redis) or the database is unavailable; nothing was done.'),
};

const idempotencyHeader = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      description: 'Makes a retried request safe: the same key (same token) answers the first action instead of acting twice.',
    },
  },
} as const;

/** A SIP URI (sip:/sips:/tel: optional), user@host, a number or an address: what CMS dials. No spaces or angle brackets. */
const REMOTE_PARTY =
  /^(?:(?:sips?|tel|h323):)?[A-Za-z0-9!#$%&'*+/=?^_`{|}~.,;()-]+(?:@(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::\d{1,5})?)?$/;

interface AddBody {
  remoteParty: string;
  chosenLayout?: string;
  layout?: string;
  nameLabelOverride?: string;
  importance?: number;
  deactivated?: boolean;
  needsActivation?: boolean;
}
type MuteBody = Partial<Record<keyof typeof mutes, boolean>> & { chosenLayout?: string };

const audit = (op: string, summary: string, description: string) => ({
  summary,
  description: `${description} Needs the operator role (admin may too; viewer gets 403). ${op}`,
  tags: ['call control'],
  security: bearerSecurity,
  headers: idempotencyHeader,
});

export async function callControlRoutes(app: FastifyInstance, options: OperatorActionOptions): Promise<void> {
  const { db, desk } = options;
  const nodes = configuredNodes(options.config);
  const operator = requireRole('operator');

  /** Replays an Idempotency-Key first, else runs `accept`. */
  const act =
    <R extends { Params: unknown; Body?: unknown }>(accept: (request: FastifyRequest<R>, reply: FastifyReply) => Promise<unknown>) =>
    async (request: FastifyRequest<R>, reply: FastifyReply) =>
      (await desk.replay(request, reply)) ?? accept(request, reply);

  /** An active call and one leg of its meeting (on any of its bridges), or 404. */
  const activeCallLeg = async (callId: string, legId: string) => {
    const call = await activeCall(db, nodes, callId);
    const [leg] = await legsOfMeeting(db, nodes, call, [legId]);
    if (!leg) throw new HttpProblem(404, 'Not Found', `No call leg "${legId}".`);
    return { call, leg };
  };

  app.post<{ Params: { id: string }; Body: AddBody }>(
    '/calls/:id/participants',
    {
      preHandler: operator,
      schema: {
        ...audit(
          'CMS: POST /api/v1/calls/<id>/participants.',
          'Add a participant (dial out)',
          'CMS dials remoteParty into the call; the result names the new participant (and its callLeg when CMS lists it).',
        ),
        params: callParams,
        body: {
          type: 'object',
          required: ['remoteParty'],
          additionalProperties: false,
          properties: {
            remoteParty: { type: 'string', minLength: 1, maxLength: 256, description: 'Whom to dial: a SIP URI, user@host, or a number.' },
            chosenLayout: layout,
            layout: { ...layout, description: 'The same as chosenLayout.' },
            nameLabelOverride: { type: 'string', maxLength: 256 },
            importance: { type: 'integer', minimum: 0, maximum: 2147483647 },
            deactivated: { type: 'boolean', description: 'false: bypass the lobby (CMS 2.9+).' },
            needsActivation: { type: 'boolean' },
          },
        },
        response: actionResponses,
      },
    },
    act(async (request, reply) => {
      const body = request.body;
      const remoteParty = body.remoteParty;
      if (!REMOTE_PARTY.test(remoteParty)) {
        throw new HttpProblem(
          400,
          'Bad Request',
          `body/remoteParty "${remoteParty.slice(0, 80)}" is not an address CMS can dial: send a SIP URI (sip:alice@example.com), user@host, or a number, without spaces.`,
        );
      }
      if (body.chosenLayout !== undefined && body.layout !== undefined && body.chosenLayout !== body.layout) {
        throw new HttpProblem(400, 'Bad Request', 'body/layout and body/chosenLayout disagree; send one of them.');
      }
      const call = await activeCall(db, nodes, request.params.id);
      const { remoteParty: _, layout: alias, chosenLayout, ...rest } = body;
      const chosen = chosenLayout ?? alias;
      return desk.submit(request, reply, {
        kind: 'addParticipant',
        callId: call.id,
        legId: null,
        meetingKey: call.meetingKey,
        parameters: { ...body },
        steps: [
          {
            node: call.node,
            callId: call.id,
            params: { callId: call.id, remoteParty, options: { ...rest, ...(chosen ? { chosenLayout: chosen } : {}) } },
          },
        ],
      });
    }),
  );

  app.patch<{ Params: { id: string; legId: string }; Body: MuteBody }>(
    '/calls/:id/participants/:legId',
    {
      preHandler: operator,
      schema: {
        ...audit(
          'CMS: PUT /api/v1/callLegs/<legId>.',
          "Mute/unmute one participant's audio or video, or set its layout",
          'Only the fields sent change. The last accepted action wins: a field that a later action on this leg or on ' +
            'everyone (PATCH /calls/<id>/participants) sets is left to it, whichever CMS write comes first.',
        ),
        params: legParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { ...mutes, chosenLayout: layout } },
        response: actionResponses,
      },
    },
    act(async (request, reply) => {
      const { call, leg } = await activeCallLeg(request.params.id, request.params.legId);
      return desk.submit(request, reply, {
        kind: 'updateCallLeg',
        callId: leg.callId,
        legId: leg.id,
        meetingKey: call.meetingKey,
        parameters: { ...request.body },
        steps: [{ node: leg.node, callId: leg.callId, params: { callLegId: leg.id, fields: request.body } }],
      });
    }),
  );

  app.patch<{ Params: { id: string }; Body: MuteBody }>(
    '/calls/:id/participants',
    {
      preHandler: operator,
      schema: {
        ...audit(
          'CMS: PUT /api/v1/calls/<id>/participants/* on every instance.',
          'Mute/unmute everyone',
          'The same change for every participant of the meeting, on every Call Bridge it spans. A participant whose ' +
            'leg a later accepted action set one of these fields on keeps what that action asked (the last action wins).',
        ),
        params: callParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { ...mutes, chosenLayout: layout } },
        response: actionResponses,
      },
    },
    act(async (request, reply) => {
      const call = await activeCall(db, nodes, request.params.id);
      const instances = await meetingInstances(db, nodes, call.meetingKey);
      return desk.submit(request, reply, {
        kind: 'updateAllParticipants',
        callId: call.id,
        legId: null,
        meetingKey: call.meetingKey,
        parameters: { ...request.body },
        steps: instances.map((instance) => ({
          node: instance.node,
          callId: instance.id,
          params: { callId: instance.id, fields: request.body },
        })),
      });
    }),
  );

  app.post<{ Params: { id: string }; Body: { participant: string } }>(
    '/calls/:id/presenter',
    {
      preHandler: operator,
      schema: {
        ...audit(
          'CMS: GET the legs, then PUT /calls/<id>/participants/* (and the presenter’s participant and leg) on every instance.',
          'Presenter mode on',
          'Everyone but the presenter gets layout speakerOnly and is audio-muted (rxAudioMute); the presenter gets a high importance. ' +
            'What it changes is stored, so presenter mode off restores it.',
        ),
        params: callParams,
        body: {
          type: 'object',
          required: ['participant'],
          additionalProperties: false,
          properties: { participant: { ...idParam, description: 'The presenter’s callLeg id.' } },
        },
        response: actionResponses,
      },
    },
    act(async (request, reply) => {
      const call = await activeCall(db, nodes, request.params.id);
      const [presenter] = await legsOfMeeting(db, nodes, call, [request.body.participant]);
      if (!presenter) throw new HttpProblem(404, 'Not Found', `No call leg "${request.body.participant}".`);
      if (presenter.deactivated) throw new HttpProblem(409, 'Conflict', `Call leg "${presenter.id}" waits in the lobby; admit it first.`);
      const current = await presenterModeOf(db, call.meetingKey);
      if (current) {
        throw new HttpProblem(
          409,
          'Conflict',
          `Presenter mode is already on in this meeting (presenter ${current.presenterLegId}, action ${current.actionId}); turn it off first.`,
        );
      }
      const instances = await meetingInstances(db, nodes, call.meetingKey);
      return desk.submit(request, reply, {
        kind: 'presenterOn',
        callId: call.id,
        legId: presenter.id,
        meetingKey: call.meetingKey,
        parameters: { ...request.body },
        steps: presenterSteps(instances, call.meetingKey, presenter.id, presenter.callId),
        alsoStore: async (tx, actionId) => {
          const [row] = await tx
            .insert(presenterModes)
            .values({ meetingKey: call.meetingKey, presenterLegId: presenter.id, actionId })
            .onConflictDoNothing()
            .returning({ meetingKey: presenterModes.meetingKey });
          if (!row) throw new HttpProblem(409, 'Conflict', 'Presenter mode was turned on in this meeting meanwhile; turn it off first.');
        },
      });
    }),
  );

  app.delete<{ Params: { id: string } }>(
    '/calls/:id/presenter',
    {
      preHandler: operator,
      schema: {
        ...audit(
          'CMS: PUT /calls/<id>/participants/* with the stored layouts and mutes, on every instance.',
          'Presenter mode off',
          'Layouts, mutes and the presenter’s importance go back to what they were before presenter mode.',
        ),
        params: callParams,
        response: actionResponses,
      },
    },
    act(async (request, reply) => {
      const call = await activeCall(db, nodes, request.params.id);
      const current = await presenterModeOf(db, call.meetingKey);
      if (!current) throw new HttpProblem(409, 'Conflict', 'Presenter mode is not on in this meeting.');
      // Turning off while the turning on is still queued could restore before anything was saved.
      const on = await options.actionStatus(current.actionId);
      if (on === 'queued') {
        throw new HttpProblem(
          409,
          'Conflict',
          `Presenter mode is still being turned on (action ${current.actionId}); try again when it has finished.`,
        );
      }
      // Every instance that has saved state, and every active one (an instance that ended meanwhile has nothing to restore).
      const saved = await db
        .selectDistinct({ node: presenterSavedLegs.node, callId: presenterSavedLegs.callId })
        .from(presenterSavedLegs)
        .where(eq(presenterSavedLegs.meetingKey, call.meetingKey));
      const instances = await meetingInstances(db, nodes, call.meetingKey);
      const targets = instances.filter((i) => saved.some((s) => s.callId === i.id));
      return desk.submit(request, reply, {
        kind: 'presenterOff',
        callId: call.id,
        legId: current.presenterLegId,
        meetingKey: call.meetingKey,
        parameters: {},
        steps: (targets.length > 0 ? targets : [call]).map((instance) => ({
          node: instance.node,
          callId: instance.id,
          params: { meetingKey: call.meetingKey, callId: instance.id },
        })),
        alsoStore: async (tx) => {
          await tx.delete(presenterModes).where(eq(presenterModes.meetingKey, call.meetingKey));
        },
      });
    }),
  );

  app.delete<{ Params: { id: string; legId: string } }>(
    '/calls/:id/participants/:legId',
    {
      preHandler: operator,
      schema: {
        ...audit('CMS: DELETE /api/v1/callLegs/<legId>.', 'Disconnect a participant', 'CMS ends the leg (reason apiInitiatedTeardown).'),
        params: legParams,
        response: actionResponses,
      },
    },
    act(async (request, reply) => {
      const { call, leg } = await activeCallLeg(request.params.id, request.params.legId);
      return desk.submit(request, reply, {
        kind: 'deleteCallLeg',
        callId: leg.callId,
        legId: leg.id,
        meetingKey: call.meetingKey,
        parameters: {},
        steps: [{ node: leg.node, callId: leg.callId, params: { callLegId: leg.id } }],
      });
    }),
  );

  app.delete<{ Params: { id: string } }>(
    '/calls/:id',
    {
      preHandler: operator,
      schema: {
        ...audit(
          'CMS: DELETE /api/v1/calls/<id> on every instance.',
          'End the meeting',
          'Ends every call instance of the meeting, on every Call Bridge it spans.',
        ),
        params: callParams,
        response: actionResponses,
      },
    },
    act(async (request, reply) => {
      const call = await activeCall(db, nodes, request.params.id);
      const instances = await meetingInstances(db, nodes, call.meetingKey);
      return desk.submit(request, reply, {
        kind: 'deleteCall',
        callId: call.id,
        legId: null,
        meetingKey: call.meetingKey,
        parameters: {},
        steps: instances.map((instance) => ({ node: instance.node, callId: instance.id, params: { callId: instance.id } })),
      });
    }),
  );
}

function presenterSteps(instances: CallTarget[], meetingKey: string, presenterLegId: string, presenterCallId: string) {
  return instances.map((instance) => ({
    node: instance.node,
    callId: instance.id,
    params: { meetingKey, callId: instance.id, presenterLegId, presenterHere: instance.id === presenterCallId },
  }));
}
