import { HttpProblem } from '@cms/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../auth.ts';
import { activeCall, configuredNodes, type LegTarget, legsOfMeeting, lobbyLegs, meetingInstances } from '../operator-actions/targets.ts';
import { bearerSecurity, errorResponses } from '../schemas.ts';
import type { OperatorActionOptions } from './actions.ts';
import { actionResponses } from './call-control.ts';

/** The most participants one admit request names. */
const MAX_ADMIT = 100;

interface AdmitBody {
  participants?: string[];
  call?: string;
  all?: boolean;
}

/** One step per node: the lobby legs it hosts, with their participant ids where known. */
function admitSteps(legs: Pick<LegTarget, 'id' | 'callId' | 'node' | 'participantId'>[]) {
  const byNode = new Map<string, { callId: string; legs: { callLegId: string; participantId: string | null }[] }>();
  for (const leg of legs) {
    const step = byNode.get(leg.node) ?? { callId: leg.callId, legs: [] };
    step.legs.push({ callLegId: leg.id, participantId: leg.participantId });
    byNode.set(leg.node, step);
  }
  return [...byNode].map(([node, step]) => ({ node, callId: step.callId, params: { legs: step.legs } }));
}

/** GET /lobby (who waits, cluster-wide) and POST /lobby/admit (one, some, or all of a call). */
export async function lobbyRoutes(app: FastifyInstance, options: OperatorActionOptions): Promise<void> {
  const { db, desk } = options;
  const nodes = configuredNodes(options.config);

  app.get(
    '/lobby',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'Who waits in a lobby, cluster-wide',
        description:
          'Every participant waiting to be admitted, on every Call Bridge, by the newer of two facts: the CDRs ' +
          '(callLegUpdate deactivated) and the live view (polling reads status/deactivated; the events roster has no lobby ' +
          'element). Oldest first.',
        tags: ['call control'],
        security: bearerSecurity,
        response: {
          200: {
            description: 'The lobby.',
            type: 'object',
            required: ['participants'],
            properties: {
              participants: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    callLegId: { type: 'string' },
                    callId: { type: 'string' },
                    meetingKey: { type: 'string' },
                    node: { type: ['string', 'null'] },
                    participantId: { type: ['string', 'null'] },
                    name: { type: ['string', 'null'] },
                    remoteParty: { type: ['string', 'null'] },
                    waitingSince: { type: ['string', 'null'], format: 'date-time' },
                    source: { type: 'string', enum: ['liveRoster', 'cdr'] },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const rows = await lobbyLegs(db);
      return {
        participants: rows.map((row) => ({
          callLegId: row.call_leg_id,
          callId: row.call_id,
          meetingKey: row.meeting_key,
          node: row.node,
          participantId: row.participant_id,
          name: row.name,
          remoteParty: row.remote_party,
          waitingSince: row.waiting_since === null ? null : new Date(row.waiting_since).toISOString(),
          source: row.source,
        })),
      };
    },
  );

  app.post<{ Body: AdmitBody }>(
    '/lobby/admit',
    {
      preHandler: requireRole('operator'),
      schema: {
        summary: 'Admit participants from the lobby',
        description:
          'Either `participants` (callLeg ids, each waiting in a lobby) or `call` with `all: true` (everyone waiting in ' +
          'that meeting, on every Call Bridge). CMS: PUT /api/v1/participants/<id> deactivated=false, on the node hosting each. ' +
          'Needs the operator role (admin may too; viewer gets 403).',
        tags: ['call control'],
        security: bearerSecurity,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            participants: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_ADMIT,
              uniqueItems: true,
              items: { type: 'string', minLength: 1, maxLength: 256 },
              description: 'callLeg ids of participants waiting in a lobby.',
            },
            call: {
              type: 'string',
              minLength: 1,
              maxLength: 256,
              description: 'A call id: with all: true, admits everyone waiting in its meeting.',
            },
            all: { type: 'boolean' },
          },
        },
        response: actionResponses,
      },
    },
    async (request: FastifyRequest<{ Body: AdmitBody }>, reply: FastifyReply) => {
      const replayed = await desk.replay(request, reply);
      if (replayed) return replayed;
      const body = request.body;
      if (body.participants !== undefined && body.call === undefined && body.all === undefined) {
        const legs = await legsOfMeeting(db, nodes, null, body.participants);
        const notWaiting = legs.filter((leg) => !leg.deactivated).map((leg) => leg.id);
        if (notWaiting.length > 0) {
          throw new HttpProblem(409, 'Conflict', `Not waiting in a lobby: ${notWaiting.join(', ')}. Nothing was admitted.`);
        }
        return desk.submit(request, reply, {
          kind: 'admitParticipants',
          callId: legs.length === 1 ? (legs[0]?.callId ?? null) : null,
          legId: legs.length === 1 ? (legs[0]?.id ?? null) : null,
          meetingKey: null,
          parameters: { ...body },
          steps: admitSteps(legs),
        });
      }
      if (body.call !== undefined && body.all === true && body.participants === undefined) {
        const call = await activeCall(db, nodes, body.call);
        // Checks every instance's node is configured.
        await meetingInstances(db, nodes, call.meetingKey);
        const waiting = await lobbyLegs(db, call.meetingKey);
        if (waiting.length === 0) throw new HttpProblem(409, 'Conflict', `Nobody waits in the lobby of call "${call.id}"'s meeting.`);
        const legs = waiting.map((row) => ({
          id: row.call_leg_id,
          callId: row.call_id,
          node: row.node ?? call.node,
          participantId: row.participant_id,
        }));
        for (const leg of legs) {
          if (!nodes.has(leg.node))
            throw new HttpProblem(
              409,
              'Conflict',
              `Call leg "${leg.id}" is on CMS node "${leg.node}", which is not configured (cms.nodes).`,
            );
        }
        return desk.submit(request, reply, {
          kind: 'admitParticipants',
          callId: call.id,
          legId: null,
          meetingKey: call.meetingKey,
          parameters: { ...body },
          steps: admitSteps(legs),
        });
      }
      throw new HttpProblem(400, 'Bad Request', 'Send either {"participants": [<callLeg id>, ...]} or {"call": <call id>, "all": true}.');
    },
  );
}
