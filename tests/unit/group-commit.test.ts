import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GroupCommitter } from '@cms/queue';

/** A commit function whose calls the test completes by hand, so no timing is involved. */
function controlledCommits() {
  const calls: { items: number[]; resolve: () => void; reject: (err: Error) => void }[] = [];
  let inFlight = 0;
  let maxSeen = 0;
  const commit = (items: number[]) =>
    new Promise<void>((resolve, reject) => {
      inFlight++;
      maxSeen = Math.max(maxSeen, inFlight);
      const done = () => inFlight--;
      calls.push({
        items,
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
    });
  return { calls, commit, maxInFlightSeen: () => maxSeen };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('GroupCommitter', () => {
  test('writes items handed in during a commit together in the next one', async () => {
    const c = controlledCommits();
    const g = new GroupCommitter<number, void>({ commit: c.commit, size: () => 1, maxGroupSize: 100 });
    const first = g.submit(1);
    const rest = [g.submit(2), g.submit(3), g.submit(4)];
    await tick();
    assert.deepEqual(
      c.calls.map((x) => x.items),
      [[1]],
    );
    c.calls[0]?.resolve();
    await first;
    await tick();
    assert.deepEqual(c.calls[1]?.items, [2, 3, 4]);
    c.calls[1]?.resolve();
    await Promise.all(rest);
  });

  test('keeps a group within maxGroupSize', async () => {
    const c = controlledCommits();
    const g = new GroupCommitter<number, void>({ commit: c.commit, size: (n) => n, maxGroupSize: 5 });
    const all = Promise.all([g.submit(1), g.submit(3), g.submit(2), g.submit(4)]);
    // Complete each commit as it starts, until every item is written.
    for (let i = 0; i < 3; i++) {
      await tick();
      c.calls[i]?.resolve();
    }
    await all;
    assert.deepEqual(
      c.calls.map((x) => x.items),
      [[1], [3, 2], [4]],
    );
  });

  test('with isolateFailures, a failed group is retried item by item and only the bad item fails', async () => {
    const committed: number[][] = [];
    let first = true;
    const g = new GroupCommitter<number, void>({
      commit: async (items) => {
        if (first) {
          first = false;
          await new Promise((r) => setImmediate(r));
        }
        if (items.includes(13)) throw new Error('bad batch');
        committed.push(items);
      },
      size: () => 1,
      maxGroupSize: 100,
      isolateFailures: true,
    });
    const results = await Promise.allSettled([g.submit(0), g.submit(12), g.submit(13), g.submit(14)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(committed, [[0], [12], [14]]);
  });

  test('without isolateFailures, every item of a failed group fails', async () => {
    const g = new GroupCommitter<number, void>({
      commit: async () => {
        throw new Error('redis down');
      },
      size: () => 1,
      maxGroupSize: 100,
    });
    const results = await Promise.allSettled([g.submit(1), g.submit(2)]);
    assert.ok(results.every((r) => r.status === 'rejected'));
  });

  test('runs at most maxInFlight commits at once', async () => {
    const c = controlledCommits();
    const g = new GroupCommitter<number, void>({ commit: c.commit, size: () => 1, maxGroupSize: 1, maxInFlight: 2 });
    const all = [1, 2, 3, 4, 5].map((n) => g.submit(n));
    await tick();
    assert.equal(c.calls.length, 2, 'two commits started, the rest wait');
    for (let i = 0; i < 5; i++) {
      c.calls[i]?.resolve();
      await tick();
    }
    await Promise.all(all);
    assert.equal(c.calls.length, 5);
    assert.equal(c.maxInFlightSeen(), 2);
  });

  test('with gatherTurn, items handed in during the same event-loop turn start one commit together', async () => {
    const c = controlledCommits();
    const g = new GroupCommitter<number, void>({ commit: c.commit, size: () => 1, maxGroupSize: 100, gatherTurn: true });
    const first = [g.submit(1), g.submit(2)];
    assert.equal(c.calls.length, 0, 'nothing starts before the turn is over');
    await tick();
    assert.deepEqual(
      c.calls.map((x) => x.items),
      [[1, 2]],
    );
    const later = g.submit(3);
    c.calls[0]?.resolve();
    await Promise.all(first);
    await tick();
    assert.deepEqual(c.calls[1]?.items, [3]);
    c.calls[1]?.resolve();
    await later;
  });
});
