/**
 * 500 active meetings in the live meetings view: all listed, updates keep arriving, and filtering stays
 * usable. Timings are reported (t.diagnostic), not asserted: this machine is shared.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { eventually } from '../helpers/infra.ts';
import { type ConsoleStack, INTERNAL, OPERATOR_TOKEN, SECURE, STACK_START_MS, signIn, startConsoleStack } from './console-stack.ts';
import { LONG_TASKS, WATCH_LONG_TASKS } from './in-page.ts';

const MEETINGS = 500;
let c: ConsoleStack;

before(
  async () => {
    c = await startConsoleStack({ seed: 20261210 });
    // 500 meetings of two people each, all joining within 20 s and staying for the rest of the test.
    void c.sim.runScenario({
      load: {
        meetings: MEETINGS,
        participantsPerMeeting: 2,
        joinWindowSeconds: 20,
        durationSeconds: 3600,
        bridgesPerMeeting: 1,
        guestFraction: 0,
        appFraction: 0,
        domains: [SECURE, INTERNAL],
      },
    });
  },
  { timeout: STACK_START_MS },
);

test('500 active meetings: every one listed live, a filter answers, rows keep their place as updates arrive', {
  timeout: 420_000,
}, async (t) => {
  const context = await c.context();
  const page = await context.newPage();
  await signIn(page, OPERATOR_TOKEN);
  const rows = page.locator('tr[data-meeting]');
  await eventually(async () => (await rows.count()) === MEETINGS, {
    what: `${MEETINGS} meetings on screen`,
    timeoutMs: 240_000,
    intervalMs: 1_000,
  });

  // How long the page's main thread is busy while updates and the duration clock run (long tasks, >50 ms).
  await page.evaluate(WATCH_LONG_TASKS);
  const first = await rows.first().getAttribute('data-meeting');

  const started = Date.now();
  await page.getByLabel('Name').fill(first!.slice(0, 12));
  await eventually(async () => (await rows.count()) < MEETINGS && (await rows.count()) >= 1, { what: 'the filter narrowing the list' });
  const filterMs = Date.now() - started;
  await page.getByLabel('Name').fill('');
  await eventually(async () => (await rows.count()) === MEETINGS, { what: 'all back' });
  assert.equal(await rows.first().getAttribute('data-meeting'), first, 'the same meeting first: rows keep their order');

  // Still live: a participant joining a listed meeting changes its count on screen.
  const key = first!;
  const before = Number(await rows.first().locator('td[data-label="Participants"]').innerText());
  const meeting = c.sim.meeting(key);
  c.sim.join({ meeting, remoteParty: `late@${SECURE}` });
  await eventually(async () => Number(await rows.first().locator('td[data-label="Participants"]').innerText()) === before + 1, {
    what: 'the new participant counted on screen',
    timeoutMs: 30_000,
    intervalMs: 250,
  });
  const longTasks = (await page.evaluate(LONG_TASKS)) as number[];
  t.diagnostic(
    `500 meetings: filter answered in ${filterMs} ms (as seen by the test driver); ${longTasks.length} long tasks, ` +
      `longest ${Math.round(Math.max(0, ...longTasks))} ms, total ${Math.round(longTasks.reduce((a, b) => a + b, 0))} ms`,
  );
  await context.close();
});
