import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { startSimulator } from '@cms/cms-sim';
import { Agent, fetch as undiciFetch } from 'undici';

const TLS_DIR = join(import.meta.dirname, '../../tools/cms-sim/fixtures/tls');
const tls = { keyFile: `${TLS_DIR}/server-key.pem`, certFile: `${TLS_DIR}/server-cert.pem` };
const ca = readFileSync(`${TLS_DIR}/ca.pem`);

test('bridges serve HTTPS when given key and certificate files; clients verify them with a CA file', async () => {
  const sim = await startSimulator({ tls, controlPort: null, bridges: [{ name: 'cms-1', username: 'u', password: 'p' }] });
  const agent = new Agent({ connect: { ca } });
  try {
    const url = `${sim.bridges[0]?.url}/api/v1/system/status`;
    assert.match(url, /^https:/);
    const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
    const ok = await undiciFetch(url, { headers: auth, dispatcher: agent });
    assert.equal(ok.status, 200);
    await assert.rejects(undiciFetch(url, { headers: auth }), 'without the CA the certificate is not trusted');
  } finally {
    await agent.close();
    await sim.stop();
  }
});

test('CDRs reach an https receiver whose certificate is trusted through cdr.caFile', async () => {
  const bodies: string[] = [];
  const server = createServer({ key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) }, (req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const sim = await startSimulator({
    controlPort: null,
    cdrReceivers: [`https://localhost:${port}/cdr`],
    cdr: { caFile: `${TLS_DIR}/ca.pem`, flushDelayMs: 5 },
  });
  try {
    sim.startCall();
    await sim.waitForCdrsDelivered({ timeoutMs: 10_000 });
    assert.equal(bodies.length, 1);
    assert.match(bodies[0] ?? '', /type="callStart"/);
  } finally {
    await sim.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('setTls serves a new certificate to new connections: an expired one is refused, a renewed one trusted', async () => {
  const RENEWAL = join(import.meta.dirname, '../fixtures/tls');
  const key = `${RENEWAL}/server-key.pem`;
  const sim = await startSimulator({
    tls: { keyFile: key, certFile: `${RENEWAL}/expired-cert.pem` },
    controlPort: null,
    bridges: [{ name: 'cms-1', username: 'u', password: 'p' }],
  });
  const url = `${sim.bridges[0]?.url}/api/v1/system/status`;
  const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
  // A fresh agent per request: a kept-alive connection would keep the certificate it shook hands with.
  const fetchWith = async (caFile: string) => {
    const agent = new Agent({ connect: { ca: readFileSync(caFile) } });
    try {
      return (await undiciFetch(url, { headers: auth, dispatcher: agent })).status;
    } finally {
      await agent.close();
    }
  };
  try {
    await assert.rejects(fetchWith(`${RENEWAL}/ca.pem`), (err: Error & { cause?: { code?: string } }) => {
      assert.equal(err.cause?.code, 'CERT_HAS_EXPIRED');
      return true;
    });
    sim.setTls({ keyFile: key, certFile: `${RENEWAL}/server-cert.pem` });
    assert.equal(await fetchWith(`${RENEWAL}/ca.pem`), 200);
    sim.setTls(tls);
    await assert.rejects(fetchWith(`${RENEWAL}/ca.pem`), 'the simulator fixture is signed by a CA the client does not trust');
    assert.equal(await fetchWith(`${TLS_DIR}/ca.pem`), 200);
  } finally {
    await sim.stop();
  }
});

test('setTls on a bridge without TLS is refused', async () => {
  const sim = await startSimulator({ controlPort: null });
  try {
    assert.throws(() => sim.setTls(tls), /does not serve HTTPS/);
  } finally {
    await sim.stop();
  }
});
