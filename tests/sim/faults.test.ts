import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { Api, eventually, FAST_CDR, TestReceiver } from './helpers.ts';

/** Fault injection and observation: random 503s, latency, the write ceiling, restarts, and the control API. */
describe('fault injection', () => {
  let sim: Simulator;
  let api1: Api;
  let api2: Api;

  before(async () => {
    sim = await startSimulator({ bridges: [{ name: 'cms-1' }, { name: 'cms-2' }], seed: 51 });
    api1 = new Api(sim.bridge('cms-1'));
    api2 = new Api(sim.bridge('cms-2'));
  });
  after(async () => {
    await sim.stop();
  });

  test('fraction503 answers that share of requests with 503 and a failureDetails body, and counts them', async () => {
    sim.setFaults({ fraction503: 1 }, { bridge: 'cms-1' });
    try {
      const res = await api1.get('/calls');
      assert.equal(res.status, 503);
      assert.ok(res.xml.failureDetails);
      assert.equal((await api2.get('/calls')).status, 200, 'faults are per bridge');
      assert.equal(sim.inspect().bridges[0]?.counters.fault503, 1);
    } finally {
      sim.setFaults({ fraction503: 0 }, { bridge: 'cms-1' });
    }
    assert.equal((await api1.get('/calls')).status, 200);
  });

  test('forbidden answers every API request 403 (a user without the API role) and counts it; clearing it lets requests through', async () => {
    const m = sim.startCall({ bridges: ['cms-2'] });
    sim.setFaults({ forbidden: true }, { bridge: 'cms-2' });
    const since = sim.writeLog().at(-1)?.seq ?? 0;
    try {
      const read = await api2.get('/system/status');
      assert.equal(read.status, 403);
      assert.ok((read.xml.failureDetails as Record<string, unknown>).accessDenied !== undefined);
      assert.equal(read.headers.get('www-authenticate'), null, 'new credentials would not help');
      assert.equal((await api2.put(`/calls/${m.callId('cms-2')}`, { messageText: 'no' })).status, 403);
      assert.equal((await api1.get('/calls')).status, 200, 'faults are per bridge');
      assert.equal(sim.inspect().bridges[1]?.counters.forbidden, 2);
      assert.deepEqual(
        sim.writeLog({ sinceSeq: since }).map((w) => [w.outcome, w.status]),
        [['forbidden', 403]],
      );
      assert.equal(sim.inspectCall(m.callId('cms-2')).messageText, '', 'a refused write changes nothing');
      assert.equal((await new Api(sim.bridge('cms-2'), { username: 'admin', password: 'wrong' }).get('/calls')).status, 401);
    } finally {
      sim.setFaults({ forbidden: false }, { bridge: 'cms-2' });
    }
    assert.equal((await api2.get('/system/status')).status, 200);
  });

  test('requestLog keeps the arrival time of every API request, reads included, per bridge', async () => {
    const before = Date.now();
    const seen = sim.requestLog({ bridge: 'cms-1' }).length;
    await api1.get('/calls?limit=1');
    await api1.get('/system/status');
    const log = sim.requestLog({ bridge: 'cms-1' }).slice(seen);
    assert.deepEqual(
      log.map((e) => [e.bridge, e.method, e.url]),
      [
        ['cms-1', 'GET', '/api/v1/calls?limit=1'],
        ['cms-1', 'GET', '/api/v1/system/status'],
      ],
    );
    assert.ok(log.every((e) => e.atMs >= before && e.atMs <= Date.now()));
    assert.ok(sim.requestLog().length >= sim.requestLog({ bridge: 'cms-1' }).length);
  });

  test('latencyMs delays every answer by at least that long', async () => {
    sim.setFaults({ latencyMs: 150 }, { bridge: 'cms-2' });
    try {
      const started = Date.now();
      assert.equal((await api2.get('/system/status')).status, 200);
      assert.ok(Date.now() - started >= 140, `answered after ${Date.now() - started} ms`);
    } finally {
      sim.setFaults({ latencyMs: 0 }, { bridge: 'cms-2' });
    }
  });

  test('writes above maxWritesPerSecond get 503 and count as violations; reads are not limited', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const callId = m.callId('cms-1');
    sim.setFaults({ maxWritesPerSecond: 3 }, { bridge: 'cms-1' });
    try {
      const since = sim.writeLog().at(-1)?.seq ?? 0;
      // Five writes at once, well inside one second: three pass, two hit the ceiling.
      const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => api1.put(`/calls/${callId}`, { messageText: `m${i}` })));
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 503, 503]);
      assert.ok(answers.find((a) => a.status === 503)?.xml.failureDetails);
      assert.equal((await api1.get(`/calls/${callId}`)).status, 200, 'reads are not limited');
      assert.equal(sim.inspect().bridges[0]?.counters.writeViolations, 2);
      const log = sim.writeLog({ sinceSeq: since, bridge: 'cms-1' });
      assert.deepEqual(log.map((w) => w.outcome).sort(), ['applied', 'applied', 'applied', 'rateLimited', 'rateLimited']);
      const applied = log.filter((w) => w.outcome === 'applied').map((w) => w.params.messageText);
      assert.equal(sim.inspectCall(callId).messageText, applied.at(-1), 'refused writes change nothing');
    } finally {
      sim.setFaults({ maxWritesPerSecond: null }, { bridge: 'cms-1' });
      sim.endCall(m);
    }
  });

  test('a restart with downtime answers 503 until the bridge is back, with a new session', async () => {
    const before = sim.bridge('cms-2').session;
    const m = sim.startCall({ bridges: ['cms-2'] });
    const after = sim.restartBridge('cms-2', { downMs: 300 });
    assert.notEqual(after.session, before);
    assert.equal((await api2.get('/calls')).status, 503);
    await eventually(async () => (await api2.get('/calls')).status === 200, { what: 'bridge back' });
    const calls = (await api2.get('/calls')).xml.calls;
    assert.equal(calls['@total'], '0', 'a crash loses the calls');
    assert.equal(m.ended, true);
  });
});

describe('control API', () => {
  let sim: Simulator;
  let receiver: TestReceiver;
  let control: string;

  before(async () => {
    receiver = await TestReceiver.start();
    sim = await startSimulator({ seed: 52, cdrReceivers: [receiver.url()], cdr: FAST_CDR, controlToken: 'ctl-token' });
    control = sim.controlUrl as string;
  });
  after(async () => {
    await sim.stop();
    await receiver.close();
  });

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(control + path, {
      method,
      headers: { authorization: 'Bearer ctl-token', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }

  test('the control API needs its token when one is configured', async () => {
    assert.equal((await fetch(`${control}/inspect`)).status, 401);
    assert.equal((await call('GET', '/inspect')).status, 200);
  });

  test('GET /inspect shows each call with its current message text, and counters', async () => {
    const m = sim.startCall({ name: 'Inspected' });
    const api = new Api(sim.bridges[0] as never);
    await api.put(`/calls/${m.callId()}`, { messageText: 'Security Level 3', messagePosition: 'bottom', messageDuration: 'permanent' });
    const { json } = (await call('GET', '/inspect')) as {
      json: { bridges: { calls: Record<string, unknown>[]; counters: Record<string, number> }[] };
    };
    const inspected = json.bridges[0]?.calls.find((c) => c.id === m.callId());
    assert.equal(inspected?.messageText, 'Security Level 3');
    assert.equal(inspected?.messagePosition, 'bottom');
    assert.equal(inspected?.messageVisible, true);
    assert.ok((json.bridges[0]?.counters.apiWrites ?? 0) >= 1);
    const writes = (await call('GET', '/writes?method=PUT')).json as { url: string; params: Record<string, string> }[];
    assert.equal(writes.at(-1)?.params.messageText, 'Security Level 3');
    sim.endCall(m);
  });

  test('POST /faults, /receivers/outage and /bridges/:name/restart change the running simulator', async () => {
    assert.equal((await call('POST', '/faults', { maxWritesPerSecond: 7 })).status, 200);
    assert.equal(sim.inspect().bridges[0]?.faults.maxWritesPerSecond, 7);
    assert.equal((await call('POST', '/receivers/outage', { on: true })).status, 200);
    assert.equal(sim.cdrStats()[0]?.outage, true);
    assert.equal((await call('POST', '/receivers/outage', { on: false })).status, 200);
    const session = sim.bridges[0]?.session;
    const restarted = (await call('POST', '/bridges/cms-1/restart', {})).json as { session: string };
    assert.notEqual(restarted.session, session);
    assert.equal((await call('POST', '/bridges/nope/restart', {})).status, 400);
  });

  test('driver methods are callable over the control API', async () => {
    const started = (await call('POST', '/driver/startCall', { args: [{ name: 'Remote driven' }] })).json as {
      result: { callCorrelator: string; calls: Record<string, string> };
    };
    const joined = (
      await call('POST', '/driver/join', { args: [{ meeting: started.result.callCorrelator, remoteParty: 'x@example.com' }] })
    ).json as {
      result: { callLegId: string };
    };
    assert.match(joined.result.callLegId, /^[0-9a-f-]{36}$/);
    assert.equal((await call('POST', '/driver/nope', { args: [] })).status, 404);
    await call('POST', '/driver/endCall', { args: [started.result.callCorrelator] });
  });

  test('POST /scenario runs a scenario and reports it', async () => {
    const scenario = { meetings: [{ name: 'From control', participants: { count: 3 }, end: 1 }] };
    const { json } = (await call('POST', '/scenario?wait=true&speed=1000', scenario)) as {
      json: { report: { joins: number; leaves: number } };
    };
    assert.equal(json.report.joins, 3);
    assert.equal(json.report.leaves, 3);
  });
});
