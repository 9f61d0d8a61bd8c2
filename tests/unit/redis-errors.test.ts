import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { watchRedisErrors } from '@cms/queue';

function recordingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  return {
    lines,
    warn: (fields: object, message: string) => lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message }),
    info: (fields: object, message: string) => lines.push({ level: 'info', fields: fields as Record<string, unknown>, message }),
  };
}

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
}

/** Stands in for an ioredis connection: an emitter with `options`. */
class FakeConnection extends EventEmitter {
  options = {};
}

describe('watchRedisErrors', () => {
  test('logs an error as an object, once per window across sources, then says how many were left out', () => {
    const log = recordingLogger();
    let now = 0;
    const queue = watchRedisErrors(log, new EventEmitter(), 'queue a', { now: () => now, windowMs: 1000 });
    const worker = watchRedisErrors(log, new EventEmitter(), 'worker a', { now: () => now, windowMs: 1000, fields: { node: 'cms1' } });

    queue.emit('error', refused());
    worker.emit('error', refused());
    now = 500;
    queue.emit('error', refused());
    assert.equal(log.lines.length, 1, 'the same error within the window is left out');
    assert.equal(log.lines[0]?.level, 'warn');
    assert.equal(log.lines[0]?.fields.source, 'queue a');
    assert.ok(log.lines[0]?.fields.err instanceof Error, 'the error is logged as an object');

    now = 1500;
    worker.emit('error', refused());
    assert.equal(log.lines.length, 2);
    assert.equal(log.lines[1]?.fields.node, 'cms1');
    assert.equal(log.lines[1]?.fields.repeatedSinceLastLine, 2);
    assert.deepEqual(log.lines[1]?.fields.repeatedBy, ['worker a', 'queue a']);
  });

  test('a different error is logged at once', () => {
    const log = recordingLogger();
    const queue = watchRedisErrors(log, new EventEmitter(), 'queue b');
    queue.emit('error', refused());
    queue.emit('error', new Error('OOM command not allowed when used memory > maxmemory'));
    assert.equal(log.lines.length, 2);
  });

  test('a connection says when it is ready again, and the next outage is logged at once', () => {
    const log = recordingLogger();
    const connection = watchRedisErrors(log, new FakeConnection(), 'redis connection');
    connection.emit('ready');
    assert.equal(log.lines.length, 0, 'no line for the first connection');
    connection.emit('error', refused());
    connection.emit('ready');
    assert.equal(log.lines.length, 2);
    assert.equal(log.lines[1]?.level, 'info');
    assert.match(log.lines[1]?.message ?? '', /ready again/);
    connection.emit('error', refused());
    assert.equal(log.lines.length, 3, 'a new outage is not a repeat of the last one');
  });

  test('keeps an emitter with a listener from throwing on error (EventEmitter throws without one)', () => {
    const log = recordingLogger();
    const emitter = watchRedisErrors(log, new EventEmitter(), 'queue c');
    assert.doesNotThrow(() => emitter.emit('error', refused()));
  });
});
