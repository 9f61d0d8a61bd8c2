/**
 * Bodies that ingest refuses, seen from real HTTP clients: a body over the limit that the client writes completely
 * still gets its 413 (naming the limit), not a connection reset; a body that stalls is cut after the configured
 * request timeout, not a minute later.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { before, describe, test } from 'node:test';
import { loadConfig } from '@cms/config';
import { createLogger } from '@cms/observability';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import { onTestFileEnd, testRedis } from '../helpers/infra.ts';
import { startStack } from '../helpers/stack.ts';

const TOKEN = 'ingest-body-token-0123456789';
const LIMIT = 2 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 1500;

/** In-process ingest with a short request timeout (not an operator setting, so not reachable through main.ts). */
let port: number;
/**
 * Ingest as its own process: a client in the same process as the server shares its event loop, which hides the
 * race between the server closing the connection and the client still writing.
 */
let processUrl: string;

before(async () => {
  const stack = await startStack({ services: ['cdr-ingest'], env: { INGEST_BODY_LIMIT_BYTES: String(LIMIT), LOG_LEVEL: 'warn' } });
  processUrl = `${stack.url('cdr-ingest')}/cdr/cms1?token=${stack.ingestToken}`;
  const redis = await testRedis();
  const config = loadConfig({
    env: {},
    overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix }, ingest: { token: TOKEN, bodyLimitBytes: LIMIT } },
  });
  const service = await buildIngest({ config, log: createLogger('cdr-ingest', 'silent'), requestTimeoutMs: REQUEST_TIMEOUT_MS });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  onTestFileEnd(() => service.close());
  port = (service.app.server.address() as AddressInfo).port;
});

interface RawExchange {
  /** Everything the server sent before the connection ended. */
  response: string;
  /** Set when the connection ended with an error (ECONNRESET, EPIPE) instead of a clean close. */
  error?: string;
  /** When the server closed the connection, from when the request was started. */
  closedAfterMs: number;
}

/** Writes `head` (request line, headers, the start of a body) and reads until the server closes the connection. */
function exchange(head: string): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let error: string | undefined;
    socket.on('data', (d) => received.push(d));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on('close', () =>
      resolve({ response: Buffer.concat(received).toString('latin1'), error, closedAfterMs: performance.now() - started }),
    );
    socket.setTimeout(30_000, () => socket.destroy(new Error('no close within 30 s')));
    socket.once('connect', () => socket.write(head));
  });
}

function postHead(length: number): string {
  return `POST /cdr/cms1?token=${TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: ${length}\r\n\r\n`;
}

describe('cdr-ingest request bodies', () => {
  // fetch (undici) writes the whole body before it reads the answer; when the server closed the connection after the
  // first megabyte it failed with EPIPE instead of showing the 413.
  test('a client that writes a body over the limit completely receives the 413, naming the limit', async () => {
    const res = await fetch(processUrl, {
      method: 'POST',
      headers: { 'content-type': 'text/xml' },
      body: Buffer.alloc(Math.floor(3.5 * LIMIT), 0x41),
    });
    assert.equal(res.status, 413);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.match(((await res.json()) as { detail: string }).detail, new RegExp(`limit of ${LIMIT} bytes`));
  });

  test('so does one that sends a body over the limit in chunks (no Content-Length)', async () => {
    const piece = Buffer.alloc(64 * 1024, 0x41);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 3 * LIMIT) return controller.close();
        sent += piece.length;
        controller.enqueue(piece);
      },
    });
    const res = await fetch(processUrl, { method: 'POST', body, duplex: 'half' } as RequestInit);
    assert.equal(res.status, 413);
    assert.match(((await res.json()) as { detail: string }).detail, new RegExp(`limit of ${LIMIT} bytes`));
  });

  test('a body that stalls is cut after the configured request timeout', async () => {
    // Announces 1000 bytes, sends 10, then nothing.
    const res = await exchange(`${postHead(1000)}<records/>`);
    assert.ok(res.closedAfterMs >= REQUEST_TIMEOUT_MS - 100, `closed after ${Math.round(res.closedAfterMs)} ms, before the timeout`);
    // Node sweeps for expired requests periodically; the bound allows for that sweep and a loaded machine.
    assert.ok(res.closedAfterMs < REQUEST_TIMEOUT_MS + 3000, `closed after ${Math.round(res.closedAfterMs)} ms`);
    assert.match(res.response, /^HTTP\/1\.1 408 /);
  });
});
