import type { FastifyInstance } from 'fastify';
import { CmsFailure, parameterError } from '../../errors.ts';
import type { Cluster, ParticipantUpdate } from '../../model/cluster.ts';
import type { Participant } from '../../model/types.ts';
import { API, type ApiContext } from '../context.ts';
import { paginate } from '../pagination.ts';
import { enumParam, formParams, intParam, type Params, remotePartyParam } from '../params.ts';
import { participantDetail, participantSummary } from '../views.ts';
import { sendOk, sendXml } from '../xml.ts';
import { parseLegUpdate } from './callLegs.ts';

type WithId = { Params: { id: string } };

/** CMS takes at most 20 ids in filterIds of a bulk participant PUT. */
const MAX_FILTER_IDS = 20;

export function participantRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { cluster } = ctx;

  const filtered = (participants: Participant[], q: Params): Participant[] => {
    if (!q.filter) return participants;
    const needle = q.filter.toLowerCase();
    return participants.filter((p) => p.name.toLowerCase().includes(needle) || p.uri.toLowerCase().includes(needle));
  };

  app.get(`${API}/participants`, async (request, reply) => {
    const participants = filtered(cluster.visibleParticipants(ctx.bridge), (request.query ?? {}) as Params);
    const page = paginate(participants, request, ctx.pageCap);
    return sendXml(reply, 'participants', {
      '@_total': page.total,
      participant: page.items.map((p) => participantSummary(cluster, p, ctx.bridge)),
    });
  });

  app.get<WithId>(`${API}/calls/:id/participants`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    const participants = filtered([...call.meeting.participants.values()], (request.query ?? {}) as Params);
    const page = paginate(participants, request, ctx.pageCap);
    return sendXml(reply, 'participants', {
      '@_total': page.total,
      participant: page.items.map((p) => participantSummary(cluster, p, ctx.bridge)),
    });
  });

  app.post<WithId>(`${API}/calls/:id/participants`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    const p = formParams(request);
    const remoteParty = remotePartyParam(p);
    const update = parseParticipantUpdate(p);
    const leg = cluster.dialOut(
      call,
      {
        remoteParty,
        displayName: p.nameLabelOverride || undefined,
        needsActivation: update.needsActivation ?? false,
        admitted: update.deactivated === false,
        importance: update.importance ?? null,
      },
      update,
    );
    return sendOk(reply, `${API}/participants/${leg.groupId}`);
  });

  app.put<{ Params: { id: string; '*': string } }>(`${API}/calls/:id/participants/*`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    if (decodeURIComponent(request.params['*']) !== '*') throw new CmsFailure(404, 'unrecognizedObject');
    const p = formParams(request);
    const mode = enumParam(p, 'mode', ['exclude', 'selected']) ?? 'exclude';
    const ids = (p.filterIds ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (ids.length > MAX_FILTER_IDS) throw parameterError('filterIds');
    const update = parseParticipantUpdate(p);
    for (const participant of [...call.meeting.participants.values()]) {
      // Only this bridge's participants: the ones hosted elsewhere are changed on their own bridge.
      if (participant.bridge !== ctx.bridge) continue;
      const listed = ids.includes(participant.id);
      if (mode === 'selected' ? listed : !listed) cluster.updateParticipant(participant, update);
    }
    return sendOk(reply);
  });

  app.get<WithId>(`${API}/participants/:id`, async (request, reply) => {
    const participant = cluster.findParticipant(ctx.bridge, request.params.id);
    return sendXml(reply, 'participant', participantDetail(cluster, participant, ctx.bridge));
  });

  app.put<WithId>(`${API}/participants/:id`, async (request, reply) => {
    const participant = localParticipant(cluster, ctx.bridge, request.params.id);
    cluster.updateParticipant(participant, parseParticipantUpdate(formParams(request)));
    return sendOk(reply);
  });

  app.delete<WithId>(`${API}/participants/:id`, async (request, reply) => {
    const participant = localParticipant(cluster, ctx.bridge, request.params.id);
    const bridge = cluster.bridge(participant.bridge);
    for (const legId of [...participant.legIds]) {
      const leg = bridge.legs.get(legId);
      if (leg) cluster.leave(leg, 'apiInitiatedTeardown');
    }
    return sendOk(reply);
  });
}

function localParticipant(cluster: Cluster, bridge: string, id: string): Participant {
  const participant = cluster.findParticipant(bridge, id);
  if (participant.bridge !== bridge) throw new CmsFailure(400, 'participantCannotBeModified');
  return participant;
}

function parseParticipantUpdate(p: Params): ParticipantUpdate {
  const update: ParticipantUpdate = parseLegUpdate(p);
  if (p.importance !== undefined) update.importance = p.importance === '' ? null : (intParam(p, 'importance', 0, 2_147_483_647) ?? null);
  if (p.nameLabelOverride !== undefined) update.nameLabelOverride = p.nameLabelOverride;
  return update;
}
