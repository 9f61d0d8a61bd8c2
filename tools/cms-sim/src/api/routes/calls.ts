import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parameterError } from '../../errors.ts';
import type { CallUpdate } from '../../model/cluster.ts';
import { API, type ApiContext } from '../context.ts';
import { paginate } from '../pagination.ts';
import { boolParam, enumParam, formParams, type Params } from '../params.ts';
import { callDetail, callSummary } from '../views.ts';
import { sendOk, sendXml } from '../xml.ts';

type WithId = { Params: { id: string } };

export function callRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { cluster } = ctx;

  app.get(`${API}/calls`, async (request, reply) => {
    const q = (request.query ?? {}) as Params;
    let calls = [...cluster.bridge(ctx.bridge).calls.values()];
    if (q.coSpaceFilter) calls = calls.filter((c) => c.meeting.coSpace === q.coSpaceFilter);
    if (q.tenantFilter) calls = calls.filter((c) => c.meeting.tenant === q.tenantFilter);
    if (q.filter) {
      const needle = q.filter.toLowerCase();
      calls = calls.filter((c) => c.meeting.name.toLowerCase().includes(needle));
    }
    const page = paginate(calls, request, ctx.pageCap);
    return sendXml(reply, 'calls', { '@_total': page.total, call: page.items.map(callSummary) });
  });

  app.get<WithId>(`${API}/calls/:id`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    return sendXml(reply, 'call', callDetail(cluster, call));
  });

  app.put<WithId>(`${API}/calls/:id`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    cluster.updateCall(call, parseCallUpdate(request));
    return sendOk(reply);
  });

  app.delete<WithId>(`${API}/calls/:id`, async (request, reply) => {
    const call = cluster.findCall(ctx.bridge, request.params.id);
    cluster.endCall(call);
    return sendOk(reply);
  });
}

function parseCallUpdate(request: FastifyRequest): CallUpdate {
  const p = formParams(request);
  const update: CallUpdate = {};
  if (p.messageText !== undefined) update.messageText = p.messageText;
  if (p.messagePosition !== undefined)
    update.messagePosition = p.messagePosition === '' ? 'middle' : enumParam(p, 'messagePosition', ['top', 'middle', 'bottom']);
  if (p.messageDuration !== undefined) {
    const d = p.messageDuration;
    if (d === 'permanent') update.messageDuration = 'permanent';
    else if (d === '') update.messageDuration = 0;
    else if (/^\d+$/.test(d)) update.messageDuration = Number(d);
    else throw parameterError('messageDuration');
  }
  for (const key of ['locked', 'recording', 'streaming', 'allowAllMuteSelf', 'joinAudioMuteOverride'] as const) {
    const value = boolParam(p, key);
    if (value !== undefined) update[key] = value;
  }
  return update;
}
