import formbody from '@fastify/formbody';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CmsFailure } from '../errors.ts';
import type { EventsHub } from '../events/hub.ts';
import { basicAuthMatches, type Credentials } from './auth.ts';
import { API, type ApiContext } from './context.ts';
import { asFailure, sendFailure } from './failure.ts';
import type { FaultGate, GateVerdict } from './faults.ts';
import { formParams } from './params.ts';
import { callLegRoutes } from './routes/callLegs.ts';
import { callRoutes } from './routes/calls.ts';
import { participantRoutes } from './routes/participants.ts';
import { systemRoutes } from './routes/system.ts';
import type { WriteLog, WriteOutcome } from './writeLog.ts';
import { sendOk } from './xml.ts';

export interface BridgeServerDeps {
  ctx: ApiContext;
  gate: FaultGate;
  writeLog: WriteLog;
  events: EventsHub;
  credentials: Credentials;
  tls?: { key: Buffer; cert: Buffer };
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'DELETE']);
const VERDICT_OUTCOME: Record<Exclude<GateVerdict, 'pass'>, WriteOutcome> = {
  fault503: 'fault503',
  rateLimited: 'rateLimited',
  restarting: 'restarting',
};

function isApi(request: FastifyRequest): boolean {
  return request.url.toLowerCase().startsWith(`${API}/`.toLowerCase());
}

function isWrite(request: FastifyRequest): boolean {
  // Getting an events token is not a configuration write.
  return isApi(request) && WRITE_METHODS.has(request.method) && !request.url.toLowerCase().startsWith('/api/v1/authtokens');
}

/** One Call Bridge's Web Admin port: the REST API under /api/v1 and the events WebSocket at /events/v1. */
export async function buildBridgeServer(deps: BridgeServerDeps): Promise<FastifyInstance> {
  const { ctx, gate, writeLog, events } = deps;
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true },
    ...(deps.tls ? { https: deps.tls } : {}),
  }) as unknown as FastifyInstance;
  const outcomes = new WeakMap<FastifyRequest, WriteOutcome>();
  const arrivals = new WeakMap<FastifyRequest, number>();
  const failureReasons = new WeakMap<FastifyRequest, string>();

  await app.register(formbody);
  await app.register(websocket, { options: { maxPayload: 1 << 20, autoPong: false } });

  app.addHook('onRequest', async (request, reply) => {
    const now = Date.now();
    arrivals.set(request, now);
    if (!isApi(request)) return;
    gate.arrived({ atMs: now, method: request.method, url: request.url });
    if (!basicAuthMatches(request.headers.authorization, deps.credentials)) {
      gate.counters.unauthorized++;
      outcomes.set(request, 'unauthorized');
      reply.header('www-authenticate', 'Basic realm="CMS API"');
      return sendFailure(reply, new CmsFailure(401, 'authenticationFailed'));
    }
    if (gate.faults.forbidden) {
      // Known user, password right, but the role does not allow the API: no WWW-Authenticate (new credentials
      // would not help).
      gate.counters.forbidden++;
      outcomes.set(request, 'forbidden');
      return sendFailure(reply, new CmsFailure(403, 'accessDenied'));
    }
  });

  app.addHook('preHandler', async (request, reply) => {
    if (!isApi(request)) return;
    const latency = gate.latency();
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    const write = isWrite(request);
    const verdict = gate.judge(write);
    if (verdict === 'pass') {
      // A failure a test armed: CMS's answer, and the model is left untouched.
      const armed = write ? gate.takeFailure(request.method, request.url) : null;
      if (!armed) return;
      reply.header('x-cms-sim-fault', 'injected');
      return sendFailure(reply, new CmsFailure(armed.status, armed.failureReason, armed.parameter));
    }
    outcomes.set(request, VERDICT_OUTCOME[verdict]);
    reply.header('x-cms-sim-fault', verdict);
    return sendFailure(reply, new CmsFailure(503, verdict === 'restarting' ? 'callBridgeUnavailable' : 'databaseNotReady'));
  });

  app.addHook('onResponse', async (request, reply) => {
    if (!isWrite(request)) return;
    const status = reply.statusCode;
    const outcome = outcomes.get(request) ?? (status === 200 ? 'applied' : 'failed');
    const atMs = arrivals.get(request) ?? Date.now();
    writeLog.add({
      at: new Date(atMs).toISOString(),
      atMs,
      bridge: ctx.bridge,
      method: request.method,
      url: request.url,
      params: outcome === 'unauthorized' ? {} : formParams(request),
      status,
      outcome,
      failureReason: failureReasons.get(request),
    });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 && typeof payload === 'string') {
      const match = /<failureDetails><(\w+)/.exec(payload);
      if (match?.[1]) failureReasons.set(request, match[1]);
    }
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _request: FastifyRequest, reply: FastifyReply) => {
    const failure =
      asFailure(err) ??
      (err.statusCode && err.statusCode < 500 ? new CmsFailure(err.statusCode, 'parameterError') : new CmsFailure(500, 'error'));
    return sendFailure(reply, failure);
  });
  app.setNotFoundHandler((_request, reply) => sendFailure(reply, new CmsFailure(404, 'unrecognizedObject')));

  app.post(`${API}/authTokens`, async (_request, reply) => {
    reply.header('x-cisco-cms-auth-token', events.tokens.issue());
    return sendOk(reply);
  });

  app.get(
    '/events/v1',
    {
      websocket: true,
      preValidation: async (request, reply) => {
        // A CMS without the events service (before 2.4, or switched off) does not know the path.
        if (!events.enabled) return sendFailure(reply, new CmsFailure(404, 'unrecognizedObject'));
        const token = (request.query as Record<string, string | undefined>).authToken;
        if (!events.tokens.valid(token)) return sendFailure(reply, new CmsFailure(401, 'authenticationFailed'));
        if (Date.now() < gate.downUntil) return sendFailure(reply, new CmsFailure(503, 'callBridgeUnavailable'));
        if (events.full) {
          events.refuse();
          return sendFailure(reply, new CmsFailure(503, 'tooManyConnections'));
        }
      },
    },
    (socket) => {
      events.accept(socket);
    },
  );

  callRoutes(app, ctx);
  callLegRoutes(app, ctx);
  participantRoutes(app, ctx);
  systemRoutes(app, ctx);
  return app;
}
