import type { FastifyInstance } from 'fastify';
import { TooManyReceiversError } from '../../cdr/pipeline.ts';
import { CmsFailure, parameterError } from '../../errors.ts';
import { seconds } from '../../util/clock.ts';
import { API, type ApiContext } from '../context.ts';
import { paginate } from '../pagination.ts';
import { formParams, type Params } from '../params.ts';
import { sendOk, sendXml } from '../xml.ts';

type WithId = { Params: { id: string } };

/** Reported as the Call Bridge software version. */
const SOFTWARE_VERSION = '3.8.0';

export function systemRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { cluster, cdr } = ctx;

  app.get(`${API}/callBridges`, async (request, reply) => {
    // A bridge that is not clustered lists no peers.
    const bridges = ctx.clustered ? [...cluster.bridges.values()] : [];
    const page = paginate(bridges, request, ctx.pageCap);
    return sendXml(reply, 'callBridges', {
      '@_total': page.total,
      callBridge: page.items.map((b) => ({ '@_id': b.callBridgeId, name: b.name })),
    });
  });

  app.get<WithId>(`${API}/callBridges/:id`, async (request, reply) => {
    const bridge = ctx.clustered ? [...cluster.bridges.values()].find((b) => b.callBridgeId === request.params.id) : undefined;
    if (!bridge) throw new CmsFailure(404, 'callBridgeDoesNotExist');
    return sendXml(reply, 'callBridge', {
      '@_id': bridge.callBridgeId,
      name: bridge.name,
      address: ctx.bridgeUrl(bridge.name),
      sipDomain: bridge.sipDomain,
      callBridgeGroup: undefined,
    });
  });

  app.get(`${API}/system/status`, async (_request, reply) => {
    const bridge = cluster.bridge(ctx.bridge);
    return sendXml(reply, 'status', {
      softwareVersion: SOFTWARE_VERSION,
      uptimeSeconds: seconds(Date.now() - bridge.startedAt),
      activated: true,
      clusterEnabled: ctx.clustered,
      cdrTime: cluster.clock.timestamp(),
      cdrCorrelatorIndex: cdr.nextCorrelatorIndex,
      callLegsActive: bridge.legs.size,
      callLegsMaxActive: bridge.legsMaxActive,
      callLegsCompleted: bridge.legsCompleted,
      audioBitRateOutgoing: bridge.legs.size * 64_000,
      audioBitRateIncoming: bridge.legs.size * 64_000,
      videoBitRateOutgoing: bridge.legs.size * 1_000_000,
      videoBitRateIncoming: bridge.legs.size * 1_000_000,
    });
  });

  app.get(`${API}/system/alarms`, async (request, reply) => {
    const alarm = cdr.alarm;
    const alarms = alarm ? [alarm] : [];
    const page = paginate(alarms, request, ctx.pageCap);
    return sendXml(reply, 'alarms', {
      '@_total': page.total,
      alarm: page.items.map((a) => ({ '@_id': a.id, type: a.type, activeTimeSeconds: seconds(Date.now() - a.since) })),
    });
  });

  app.get(`${API}/system/load`, async (_request, reply) => {
    return sendXml(reply, 'load', { mediaProcessingLoad: cluster.bridge(ctx.bridge).legs.size * 100 });
  });

  // ---- CDR receivers: the 2.x list form and the older single-receiver form ----

  app.get(`${API}/system/cdrReceivers`, async (request, reply) => {
    const page = paginate(cdr.receivers, request, ctx.pageCap);
    return sendXml(reply, 'cdrReceivers', {
      '@_total': page.total,
      cdrReceiver: page.items.map((r) => ({ '@_id': r.id, uri: r.uri })),
    });
  });

  app.post(`${API}/system/cdrReceivers`, async (request, reply) => {
    const uri = receiverUri(formParams(request));
    try {
      const receiver = cdr.addReceiver(uri);
      return sendOk(reply, `${API}/system/cdrReceivers/${receiver.id}`);
    } catch (err) {
      if (err instanceof TooManyReceiversError) throw new CmsFailure(400, 'tooManyCdrReceivers');
      throw err;
    }
  });

  app.get<WithId>(`${API}/system/cdrReceivers/:id`, async (request, reply) => {
    const receiver = cdr.receivers.find((r) => r.id === request.params.id);
    if (!receiver) throw new CmsFailure(404, 'cdrReceiverDoesNotExist');
    return sendXml(reply, 'cdrReceiver', { '@_id': receiver.id, uri: receiver.uri });
  });

  app.put<WithId>(`${API}/system/cdrReceivers/:id`, async (request, reply) => {
    const receiver = cdr.receivers.find((r) => r.id === request.params.id);
    if (!receiver) throw new CmsFailure(404, 'cdrReceiverDoesNotExist');
    const uri = receiverUri(formParams(request));
    cdr.setReceivers(cdr.receivers.map((r) => (r === receiver ? uri : r.uri)));
    return sendOk(reply);
  });

  app.delete<WithId>(`${API}/system/cdrReceivers/:id`, async (request, reply) => {
    if (!cdr.removeReceiver(request.params.id)) throw new CmsFailure(404, 'cdrReceiverDoesNotExist');
    return sendOk(reply);
  });

  app.get(`${API}/system/cdrReceiver`, async (_request, reply) => {
    return sendXml(reply, 'cdrReceiver', { uri: cdr.receivers[0]?.uri ?? '' });
  });

  app.put(`${API}/system/cdrReceiver`, async (request, reply) => {
    const p = formParams(request);
    const uri = p.uri ?? p.url ?? '';
    if (uri === '') cdr.setReceivers(cdr.receivers.slice(1).map((r) => r.uri));
    else cdr.setReceivers([validUri(uri), ...cdr.receivers.slice(1).map((r) => r.uri)]);
    return sendOk(reply);
  });
}

function receiverUri(p: Params): string {
  const uri = p.url ?? p.uri;
  if (!uri) throw parameterError('url');
  return validUri(uri);
}

function validUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.protocol === 'http:' || url.protocol === 'https:') return uri;
  } catch {
    // fall through to the parameter error
  }
  throw parameterError('url');
}
