import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { CmsApiError, CmsClient, type CmsClientOptions } from '@cms/cms';
import { type BridgeInfo, type Simulator, startSimulator } from '@cms/cms-sim';

const PAGE_CAP = 3;

let sim: Simulator;
let bridge: BridgeInfo;
const clients: CmsClient[] = [];

function client(overrides: Partial<{ url: string; password: string; caFile: string }> = {}, options: CmsClientOptions = {}): CmsClient {
  const c = new CmsClient(
    {
      name: 'cms-1',
      url: overrides.url ?? bridge.url,
      username: bridge.username,
      password: overrides.password ?? bridge.password,
      ...(overrides.caFile ? { caFile: overrides.caFile } : {}),
    },
    options,
  );
  clients.push(c);
  return c;
}

async function apiError(promise: Promise<unknown>): Promise<CmsApiError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof CmsApiError, `expected CmsApiError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the request to fail');
}

before(async () => {
  sim = await startSimulator({ controlPort: null, pageCap: PAGE_CAP, bridges: [{ name: 'cms-1', password: 's3cret-api-pass' }] });
  bridge = sim.bridge('cms-1');
});

afterEach(() => {
  sim.setFaults({ latencyMs: 0, fraction503: 0 });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await sim.stop();
});

describe('reading calls', () => {
  test('getCall returns the call with its values as CMS sent them (text, not coerced)', async () => {
    const meeting = sim.startCall({ name: 'Dev Space 007' });
    const call = await client().getCall(meeting.callId());
    assert.equal(call.id, meeting.callId());
    assert.equal(call.name, 'Dev Space 007');
    assert.equal(call.callCorrelator, meeting.callCorrelator);
    assert.equal(call.messageDuration, '0');
    assert.equal(call.locked, 'false');
  });

  test('listCalls returns one page, capped by the server whatever limit asks, with the total', async () => {
    for (let i = 0; i < PAGE_CAP + 2; i++) sim.startCall({ name: `capped ${i}` });
    const page = await client().listCalls({ limit: 50 });
    assert.equal(page.items.length, PAGE_CAP);
    assert.ok(page.total >= PAGE_CAP + 2);
    assert.ok(page.items.every((c) => typeof c.id === 'string' && c.id.length > 0));
  });

  test('allCalls pages with offset/limit until offset + returned reaches total', async () => {
    const started = new Set<string>();
    for (let i = 0; i < 2 * PAGE_CAP + 1; i++) started.add(sim.startCall({ name: `paged ${i}` }).callId());
    const seen: string[] = [];
    for await (const call of client().allCalls()) seen.push(call.id);
    assert.equal(new Set(seen).size, seen.length, 'no call twice');
    for (const id of started) assert.ok(seen.includes(id), `call ${id} listed`);
  });

  test('allCallLegs pages through the legs of one call', async () => {
    const meeting = sim.startCall({ name: 'many legs' });
    const legs = new Set<string>();
    for (let i = 0; i < PAGE_CAP + 2; i++) legs.add(sim.join({ call: meeting.callId(), remoteParty: `user${i}@example.com` }).callLegId);
    const listed: string[] = [];
    for await (const leg of client().allCallLegs(meeting.callId())) listed.push(leg.id);
    assert.deepEqual(new Set(listed), legs);
    const firstPage = await client().listCallLegs(meeting.callId());
    assert.equal(firstPage.items.length, PAGE_CAP);
    assert.equal(firstPage.total, legs.size);
  });

  test('getCallLeg returns the leg with its configuration and status', async () => {
    const meeting = sim.startCall({ name: 'leg detail' });
    const joined = sim.join({ call: meeting.callId(), remoteParty: '0701234567@example.com' });
    const leg = await client().getCallLeg(joined.callLegId);
    assert.equal(leg.remoteParty, '0701234567@example.com');
    assert.equal(leg.call, meeting.callId());
    assert.equal(typeof leg.configuration, 'object');
    assert.equal((leg.status as Record<string, unknown>).state, 'connected');
  });
});

describe('writing', () => {
  test('updateCall PUTs the message as a form and CMS shows it', async () => {
    const meeting = sim.startCall({ name: 'message' });
    await client().updateCall(meeting.callId(), {
      messageText: 'Security Level 2',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
    });
    const shown = sim.inspectCall(meeting.callId());
    assert.equal(shown.messageText, 'Security Level 2');
    assert.equal(shown.messagePosition, 'bottom');
    assert.equal(shown.messageVisible, true);
    const write = sim.writeLog({ method: 'PUT', urlContains: meeting.callId() }).at(-1);
    assert.deepEqual(write?.params, { messageText: 'Security Level 2', messagePosition: 'bottom', messageDuration: 'permanent' });
  });

  test('updateCall with an empty text and duration 0 clears the message', async () => {
    const meeting = sim.startCall({ name: 'clear' });
    sim.updateCall(meeting.callId(), { messageText: 'Security Level 3', messageDuration: 'permanent' });
    await client().updateCall(meeting.callId(), { messageText: '', messageDuration: 0 });
    const shown = sim.inspectCall(meeting.callId());
    assert.equal(shown.messageText, '');
    assert.equal(shown.messageVisible, false);
  });

  test('updateCallLeg mutes a leg and deleteCallLeg disconnects it', async () => {
    const meeting = sim.startCall({ name: 'leg control' });
    const callId = meeting.callId();
    sim.join({ call: callId, remoteParty: 'stays@example.com' }); // so the call outlives the disconnected leg
    const joined = sim.join({ call: callId, remoteParty: 'mute.me@example.com' });
    await client().updateCallLeg(joined.callLegId, { rxAudioMute: true });
    assert.equal(sim.inspectCall(callId).legs.find((l) => l.id === joined.callLegId)?.rxAudioMute, true);
    await client().deleteCallLeg(joined.callLegId);
    assert.equal(
      sim.inspectCall(callId).legs.some((l) => l.id === joined.callLegId),
      false,
    );
  });

  test('addParticipant returns the new participant id from the Location header', async () => {
    const meeting = sim.startCall({ name: 'dial out' });
    const id = await client().addParticipant(meeting.callId(), 'dialled@example.com');
    assert.ok(id.length > 0);
    assert.ok(sim.inspectCall(meeting.callId()).participants.some((p) => p.id === id));
  });

  test('updateParticipant changes the participant', async () => {
    const meeting = sim.startCall({ name: 'importance' });
    const joined = sim.join({ call: meeting.callId(), remoteParty: 'presenter@example.com' });
    await client().updateParticipant(joined.participantId, { importance: 5 });
    assert.equal(sim.inspectCall(meeting.callId()).participants.find((p) => p.id === joined.participantId)?.importance, 5);
  });
});

describe('failures', () => {
  test('an unknown call is a CmsApiError 404 carrying failureDetails as failureReason', async () => {
    const err = await apiError(client().getCall('00000000-0000-0000-0000-000000000000'));
    assert.equal(err.status, 404);
    assert.equal(err.failureReason, 'callDoesNotExist');
    assert.equal(err.node, 'cms-1');
    assert.equal(err.method, 'GET');
    assert.match(err.path, /^\/api\/v1\/calls\/0{8}-/);
    assert.equal(err.isNotFound, true);
    assert.equal(err.isRetryable, false);
  });

  test('a refused parameter is a 400 parameterError naming the parameter', async () => {
    const meeting = sim.startCall({ name: 'bad parameter' });
    const err = await apiError(client().updateCall(meeting.callId(), { messageDuration: 'forever' }));
    assert.equal(err.status, 400);
    assert.equal(err.failureReason, 'parameterError');
    assert.equal(err.parameter, 'messageDuration');
  });

  test('a wrong password is a 401 auth error whose message does not contain the password', async () => {
    const err = await apiError(client({ password: 'not-the-right-one' }).getSystemStatus());
    assert.equal(err.status, 401);
    assert.equal(err.isAuth, true);
    assert.equal(err.isRetryable, false);
    assert.ok(!err.message.includes('not-the-right-one'));
    assert.ok(!JSON.stringify(err).includes('not-the-right-one'));
  });

  test('503 is reported as busy, not as retryable with back-off', async () => {
    sim.setFaults({ fraction503: 1 });
    const err = await apiError(client().getSystemStatus());
    assert.equal(err.status, 503);
    assert.equal(err.isBusy, true);
    assert.equal(err.isRetryable, false);
  });

  test('an answer slower than the request timeout is a status 0 timeout, retryable', async () => {
    sim.setFaults({ latencyMs: 1000 });
    const started = Date.now();
    const err = await apiError(client({}, { requestTimeoutMs: 150 }).getSystemStatus());
    assert.ok(Date.now() - started < 900, 'gave up at the deadline, not when CMS answered');
    assert.equal(err.status, 0);
    assert.equal(err.failureReason, 'timeout');
    assert.equal(err.isRetryable, true);
  });

  test('a node that refuses connections is a status 0 connectionFailed, retryable', async () => {
    const err = await apiError(client({ url: 'http://127.0.0.1:1' }).getSystemStatus());
    assert.equal(err.status, 0);
    assert.equal(err.failureReason, 'connectionFailed');
    assert.equal(err.isRetryable, true);
  });
});

describe('TLS', () => {
  let dir: string;
  let tlsSim: Simulator;
  let caFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cms-client-tls-'));
    caFile = join(dir, 'ca.crt');
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=Throwaway Test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    );
    tlsSim = await startSimulator({ controlPort: null, tls: { keyFile: join(dir, 'server.key'), certFile: join(dir, 'server.crt') } });
  });

  after(async () => {
    await tlsSim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function tlsClient(withCa: boolean): CmsClient {
    const b = tlsSim.bridge('cms-1');
    assert.match(b.url, /^https:/);
    const c = new CmsClient({ name: 'cms-tls', url: b.url, username: b.username, password: b.password, ...(withCa ? { caFile } : {}) });
    clients.push(c);
    return c;
  }

  test('https with the private CA from caFile verifies the certificate and works', async () => {
    const status = await tlsClient(true).getSystemStatus();
    assert.ok(typeof status.softwareVersion === 'string');
  });

  test('https without the CA fails verification (never silently accepted) as tlsFailed', async () => {
    const err = await apiError(tlsClient(false).getSystemStatus());
    assert.equal(err.status, 0);
    assert.equal(err.failureReason, 'tlsFailed');
    assert.equal(err.isTlsFailure, true);
    assert.equal(err.isRetryable, false);
  });
});
