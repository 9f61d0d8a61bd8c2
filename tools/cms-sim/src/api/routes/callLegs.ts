import type { FastifyInstance } from 'fastify';
import { CmsFailure } from '../../errors.ts';
import type { LegUpdate } from '../../model/cluster.ts';
import type { CallLeg } from '../../model/types.ts';
import { API, type ApiContext } from '../context.ts';
import { paginate } from '../pagination.ts';
import { boolParam, formParams, layoutParam, type Params, remotePartyParam } from '../params.ts';
import { legDetail, legSummary } from '../views.ts';
import { sendOk, sendXml } from '../xml.ts';

type WithId = { Params: { id: string } };

export function callLegRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { cluster } = ctx;

  const list = (legs: CallLeg[], q: Params): CallLeg[] => {
    let out = legs;
    if (q.filter) {
      const needle = q.filter.toLowerCase();
      out = out.filter((l) => l.displayName.toLowerCase().includes(needle) || l.remoteParty.toLowerCase().includes(needle));
    }
    if (q.participantFilter) out = out.filter((l) => l.groupId === q.participantFilter);
    return out;
  };

  app.get(`${API}/callLegs`, async (request, reply) => {
    const legs = list([...cluster.bridge(ctx.bridge).legs.values()], (request.query ?? {}) as Params);
    const page = paginate(legs, request, ctx.pageCap);
    return sendXml(reply, 'callLegs', { '@_total': page.total, callLeg: page.items.map(legSummary) });
  });

  app.get<WithId>(`${API}/calls/:id/callLegs`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    const legs = list(cluster.legsOf(call), (request.query ?? {}) as Params);
    const page = paginate(legs, request, ctx.pageCap);
    return sendXml(reply, 'callLegs', { '@_total': page.total, callLeg: page.items.map(legSummary) });
  });

  app.post<WithId>(`${API}/calls/:id/callLegs`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    const p = formParams(request);
    const remoteParty = remotePartyParam(p);
    const update = parseLegUpdate(p);
    const leg = cluster.dialOut(
      call,
      { remoteParty, needsActivation: update.needsActivation ?? false, admitted: update.deactivated === false },
      update,
    );
    return sendOk(reply, `${API}/callLegs/${leg.id}`);
  });

  app.get<WithId>(`${API}/callLegs/:id`, async (request, reply) => {
    const leg = cluster.findLeg(ctx.bridge, request.params.id);
    return sendXml(reply, 'callLeg', legDetail(cluster, leg));
  });

  app.put<WithId>(`${API}/callLegs/:id`, async (request, reply) => {
    const leg = cluster.findLeg(ctx.bridge, request.params.id);
    cluster.updateLeg(leg, parseLegUpdate(formParams(request)));
    return sendOk(reply);
  });

  app.delete<WithId>(`${API}/callLegs/:id`, async (request, reply) => {
    const leg = cluster.findLeg(ctx.bridge, request.params.id);
    if (leg.kind === 'distributionLink') throw new CmsFailure(400, 'callLegCannotBeDeleted');
    cluster.leave(leg, 'apiInitiatedTeardown');
    return sendOk(reply);
  });
}

export function parseLegUpdate(p: Params): LegUpdate {
  const update: LegUpdate = {};
  for (const key of ['rxAudioMute', 'txAudioMute', 'rxVideoMute', 'txVideoMute', 'needsActivation', 'deactivated'] as const) {
    const value = boolParam(p, key);
    if (value !== undefined) update[key] = value;
  }
  const layout = layoutParam(p);
  if (layout !== undefined) update.chosenLayout = layout;
  if (p.callLegProfile !== undefined) update.callLegProfile = p.callLegProfile;
  if (p.dtmfSequence) update.dtmfSequence = p.dtmfSequence;
  return update;
}
