import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CmsFailure, ScenarioError, SimulatorError } from '../errors.ts';
import type { FaultOptions } from '../options.ts';
import { parseScenarioText, validateScenario } from '../scenario/parse.ts';
import { startScenario } from '../scenario/runner.ts';
import type { ScenarioReport } from '../scenario/types.ts';
import type { Simulator, WriteFailureOptions } from '../simulator.ts';
import { DRIVER_METHODS, type DriverMethod } from './driverMethods.ts';

export interface ControlServerOptions {
  host: string;
  port: number;
  urlHost: string;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
}

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

class ControlRequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ControlRequestError';
    this.status = status;
  }
}

function tokenOk(header: string | undefined, token: string): boolean {
  const presented = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const expected = Buffer.from(token);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

/**
 * The simulator's own control API (JSON): inspection, write history, CDR counters, fault injection,
 * restarts, receiver outages, scenarios, and the driver methods for tests running in another process.
 */
export async function startControlServer(sim: Simulator, options: ControlServerOptions): Promise<ControlServer> {
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true });
  const runs: { id: number; report: ScenarioReport | null }[] = [];

  // Scenario bodies may be YAML.
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, body),
  );

  app.addHook('onRequest', async (request, reply) => {
    if (options.token && !tokenOk(request.headers.authorization, options.token)) {
      return reply.code(401).send({ error: 'control token required' });
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _request: FastifyRequest, reply: FastifyReply) => {
    const status =
      err instanceof ControlRequestError
        ? err.status
        : err instanceof SimulatorError || err instanceof ScenarioError || err instanceof RangeError
          ? 400
          : err instanceof CmsFailure
            ? err.status
            : (err.statusCode ?? 500);
    return reply.code(status).send({ error: err.message, name: err.name });
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/inspect', async () => sim.inspect());
  app.get('/bridges', async () => sim.bridges);
  app.get('/cdr-stats', async () => sim.cdrStats());
  app.get<{ Querystring: { bridge?: string } }>('/cdr-records', async (request) => sim.cdrRecords(request.query.bridge));
  app.get<{ Querystring: { bridge?: string; sinceSeq?: string; method?: string; url?: string } }>('/writes', async (request) => {
    const q = request.query;
    return sim.writeLog({
      bridge: q.bridge,
      sinceSeq: q.sinceSeq === undefined ? undefined : Number(q.sinceSeq),
      method: q.method,
      urlContains: q.url,
    });
  });
  app.get('/events', async () => sim.eventsStats());

  app.post<{ Body: FaultOptions & { bridge?: string } }>('/faults', async (request) => {
    const { bridge, ...faults } = request.body ?? {};
    sim.setFaults(faults, { bridge });
    return sim.inspect().bridges.map((b) => ({ name: b.name, faults: b.faults }));
  });

  app.post<{ Body: WriteFailureOptions | undefined }>('/write-failures', async (request) => {
    const body = request.body;
    if (!body || typeof body.failureReason !== 'string') throw new ControlRequestError(400, 'body needs {"failureReason": "..."}');
    return sim.failWrites(body);
  });
  app.delete<{ Querystring: { bridge?: string } }>('/write-failures', async (request) => {
    sim.clearWriteFailures({ bridge: request.query.bridge });
    return { cleared: true };
  });

  app.post<{ Params: { name: string }; Body: { graceful?: boolean; downMs?: number } | undefined }>(
    '/bridges/:name/restart',
    async (request) => sim.restartBridge(request.params.name, request.body ?? {}),
  );

  app.post<{ Body: { on?: boolean; bridge?: string; receiver?: string } }>('/receivers/outage', async (request) => {
    const body = request.body ?? {};
    if (typeof body.on !== 'boolean') throw new ControlRequestError(400, 'body needs {"on": true|false}');
    sim.receiverOutage(body.on, { bridge: body.bridge, receiver: body.receiver });
    return { on: body.on };
  });

  app.post<{ Body: { uris?: string[]; bridge?: string } }>('/receivers', async (request) => {
    const body = request.body ?? {};
    if (!Array.isArray(body.uris)) throw new ControlRequestError(400, 'body needs {"uris": [...]}');
    sim.setCdrReceivers(body.uris, { bridge: body.bridge });
    return sim.cdrStats();
  });

  app.post<{ Querystring: { wait?: string; speed?: string; seed?: string } }>('/scenario', async (request) => {
    const body = request.body;
    const scenario = typeof body === 'string' ? parseScenarioText(body) : validateScenario(body);
    const speed = request.query.speed === undefined ? undefined : Number(request.query.speed);
    const seed = request.query.seed === undefined ? undefined : Number(request.query.seed);
    const run = startScenario(sim, scenario, { speed, seed });
    const entry = { id: runs.length + 1, report: null as ScenarioReport | null };
    runs.push(entry);
    void run.done.then((report) => {
      entry.report = report;
    });
    if (request.query.wait === 'true') return { id: entry.id, report: await run.done };
    return { id: entry.id, started: true };
  });
  app.get<{ Params: { id: string } }>('/scenario/:id', async (request) => {
    const entry = runs[Number(request.params.id) - 1];
    if (!entry) throw new ControlRequestError(404, 'no such scenario run');
    return { id: entry.id, done: entry.report !== null, report: entry.report };
  });

  app.post<{ Querystring: { timeoutMs?: string } }>('/cdr/wait-delivered', async (request) => {
    await sim.waitForCdrsDelivered({ timeoutMs: request.query.timeoutMs ? Number(request.query.timeoutMs) : undefined });
    return sim.cdrStats();
  });

  // Driver methods for out-of-process tests: POST /driver/join with {"args": [{...}]}.
  app.post<{ Params: { method: string }; Body: { args?: unknown[] } | undefined }>('/driver/:method', async (request) => {
    const method = request.params.method as DriverMethod;
    if (!DRIVER_METHODS.includes(method)) throw new ControlRequestError(404, `unknown driver method ${method}`);
    const args = request.body?.args ?? [];
    const fn = sim[method] as (...a: unknown[]) => unknown;
    const result = fn.apply(sim, args);
    return { result: result === undefined ? null : result };
  });

  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { url: `http://${options.urlHost}:${port}`, close: () => app.close() };
}
