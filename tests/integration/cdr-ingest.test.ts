import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { type Config, loadConfig } from '@cms/config';
import { createLogger } from '@cms/observability';
import { buildIngest, type IngestService } from '../../services/cdr-ingest/src/app.ts';
import { recordsXml, simpleCallRecords } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testRedis } from '../helpers/infra.ts';
import { hostPort, startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const TOKEN = 'ingest-test-token-0123456789';

function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger('cdr-ingest', 'debug', {}, stream), lines };
}

async function startIngest(overrides: Record<string, unknown> = {}, redisUrl?: string) {
  const redis = await testRedis();
  const config: Config = loadConfig({
    env: {},
    overrides: { redis: { url: redisUrl ?? redis.url }, queue: { prefix: redis.prefix }, ingest: { token: TOKEN }, ...overrides },
  });
  const { log, lines } = capturingLogger();
  const service = await buildIngest({ config, log });
  onTestFileEnd(() => service.close());
  return { service, lines };
}

function post(
  service: IngestService,
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'text/xml' },
) {
  return service.app.inject({ method: 'POST', url, payload: body, headers });
}

/** Every batch waiting in the queue (a job holds the batches of POSTs that arrived together). */
async function queuedBatches(service: IngestService) {
  return (await service.queue.getJobs(['waiting'])).flatMap((j) => j.data.batches);
}

const batch = () => recordsXml({ session: randomUUID(), records: simpleCallRecords() });

describe('cdr-ingest', () => {
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  before(async () => {
    ingest = await startIngest({
      cms: { nodes: [{ name: 'cms1', url: 'https://cms1.example.com:445', username: 'u', password: 'p', callBridgeId: 'bridge-guid-1' }] },
    });
  });

  test('stores a valid batch in Redis and only then answers 200', async () => {
    const session = randomUUID();
    const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, recordsXml({ session, records: simpleCallRecords() }));
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'stored', records: 5, quarantined: 0 });
    const queued = (await queuedBatches(ingest.service)).find((b) => b.batch.session === session);
    assert.ok(queued, 'the batch is in the queue when 200 is answered');
    assert.equal(queued.node, 'cms1');
    assert.equal(queued.batch.records.length, 5);
  });

  test('accepts the token as Authorization: Bearer', async () => {
    const res = await post(ingest.service, '/cdr/cms1', batch(), { authorization: `Bearer ${TOKEN}` });
    assert.equal(res.statusCode, 200);
  });

  test('answers 401 problem+json for a wrong token and for no token', async () => {
    for (const url of ['/cdr/cms1?token=wrong-token-wrong-token', '/cdr/cms1']) {
      const res = await post(ingest.service, url, batch());
      assert.equal(res.statusCode, 401, url);
      assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
      assert.equal(res.json().status, 401);
      assert.match(res.headers['www-authenticate'] as string, /Bearer/);
    }
  });

  test('parses the body as XML whatever the Content-Type, or with none', async () => {
    for (const type of ['application/xml', 'application/x-www-form-urlencoded', 'application/octet-stream', undefined]) {
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, batch(), headers);
      assert.equal(res.statusCode, 200, `content-type ${type}`);
    }
  });

  test('answers 400 problem+json for a body that is not XML', async () => {
    const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, 'this is not xml <<<');
    assert.equal(res.statusCode, 400);
    assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
    assert.match(res.json().detail, /XML/);
  });

  test('answers 400 for XML that is not a <records> document', async () => {
    const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, '<?xml version="1.0"?><calls total="0"/>');
    assert.equal(res.statusCode, 400);
    assert.match(res.json().detail, /records/);
  });

  test('answers 400 for an empty body', async () => {
    const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, '');
    assert.equal(res.statusCode, 400);
  });

  test('answers 400 for an entity-expansion (billion laughs) document', async () => {
    const xml = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><records session="s">&lol2;</records>`;
    const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, xml);
    assert.equal(res.statusCode, 400);
  });

  test('answers 413 for a 50 MB body without reading it all', async () => {
    const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, Buffer.alloc(50 * 1024 * 1024, 0x41));
    assert.equal(res.statusCode, 413);
    assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
  });

  test('acknowledges a batch with invalid records and carries them to quarantine', async () => {
    const session = randomUUID();
    const xml = recordsXml({
      session,
      records: [
        ...simpleCallRecords().slice(0, 2),
        { type: 'callLegStart', correlatorIndex: 7, time: 'yesterday', body: `<callLeg id="${randomUUID()}"/>` },
      ],
    });
    const res = await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, xml);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'stored', records: 2, quarantined: 1 });
    const queued = (await queuedBatches(ingest.service)).find((b) => b.batch.session === session);
    assert.equal(queued?.batch.rejected.length, 1);
    assert.match(queued?.batch.rejected[0]?.reason ?? '', /time/);
  });

  test('maps /cdr without a node by the callBridge attribute, and stores unknown bridges as node null', async () => {
    const known = randomUUID();
    const unknown = randomUUID();
    assert.equal(
      (
        await post(
          ingest.service,
          `/cdr?token=${TOKEN}`,
          recordsXml({ session: known, callBridge: 'bridge-guid-1', records: simpleCallRecords() }),
        )
      ).statusCode,
      200,
    );
    assert.equal(
      (
        await post(
          ingest.service,
          `/cdr?token=${TOKEN}`,
          recordsXml({ session: unknown, callBridge: 'other', records: simpleCallRecords() }),
        )
      ).statusCode,
      200,
    );
    const queued = await queuedBatches(ingest.service);
    assert.equal(queued.find((b) => b.batch.session === known)?.node, 'cms1');
    assert.equal(queued.find((b) => b.batch.session === unknown)?.node, null);
  });

  test('accepts the Cisco Meeting Management URI form with a trailing slash', async () => {
    const res = await post(ingest.service, `/cdr/1/?token=${TOKEN}`, batch());
    assert.equal(res.statusCode, 200);
  });

  test('never logs the token', async () => {
    await post(ingest.service, `/cdr/cms1?token=${TOKEN}`, 'not xml');
    await post(ingest.service, '/cdr/cms1?token=a-wrong-token-value-123', batch());
    const logged = ingest.lines.join('');
    assert.ok(logged.length > 0, 'something was logged');
    assert.ok(!logged.includes(TOKEN));
    assert.ok(!logged.includes('a-wrong-token-value-123'));
  });

  test('serves /healthz and /readyz on both ports, /metrics on the metrics port only', async () => {
    for (const app of [ingest.service.app, ingest.service.metricsApp]) {
      assert.equal((await app.inject('/healthz')).statusCode, 200);
      const ready = await app.inject('/readyz');
      assert.equal(ready.statusCode, 200);
      assert.equal(ready.json().checks[0].name, 'redis');
    }
    const metrics = await ingest.service.metricsApp.inject('/metrics');
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /cdr_ingest_posts_total\{[^}]*outcome="accepted"/);
    assert.equal((await ingest.service.app.inject('/metrics')).statusCode, 404);
  });
});

describe('cdr-ingest without a token configured', () => {
  test('refuses to start, naming the setting', async () => {
    const redis = await testRedis();
    const config = loadConfig({ env: {}, overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix } } });
    await assert.rejects(buildIngest({ config }), /ingest\.token/);
  });
});

describe('cdr-ingest when Redis goes away', () => {
  let proxy: TcpProxy;
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  before(async () => {
    const { url } = await testRedis();
    const { host, port } = hostPort(url, 6379);
    proxy = await startTcpProxy(host, port);
    onTestFileEnd(() => proxy.close());
    ingest = await startIngest({}, proxy.url(url));
  });

  test('answers 503 with Retry-After while Redis is unreachable, and 200 once it is back', async () => {
    assert.equal((await post(ingest.service, `/cdr/n?token=${TOKEN}`, batch())).statusCode, 200);
    await proxy.cut();
    const down = await post(ingest.service, `/cdr/n?token=${TOKEN}`, batch());
    assert.equal(down.statusCode, 503);
    assert.equal(down.headers['retry-after'], '5');
    assert.match(down.json().detail, /re-send/);
    assert.equal((await ingest.service.app.inject('/readyz')).statusCode, 503);
    await proxy.restore();
    await eventually(async () => (await post(ingest.service, `/cdr/n?token=${TOKEN}`, batch())).statusCode === 200, {
      what: 'ingest to accept again',
    });
  });
});

describe('cdr-ingest with a backlog over the limit', () => {
  test('answers 503 with Retry-After so CMS holds the records', async () => {
    const { service } = await startIngest({ ingest: { token: TOKEN, maxBacklog: 3 } });
    for (let i = 0; i < 3; i++) assert.equal((await post(service, `/cdr/n?token=${TOKEN}`, batch())).statusCode, 200);
    const res = await eventually(
      async () => {
        const r = await post(service, `/cdr/n?token=${TOKEN}`, batch());
        return r.statusCode === 503 ? r : undefined;
      },
      { what: 'a 503 once the backlog gauge sees 3 waiting batches' },
    );
    assert.equal(res.headers['retry-after'], '5');
    assert.match(res.json().detail, /maxBacklog/);
  });
});
