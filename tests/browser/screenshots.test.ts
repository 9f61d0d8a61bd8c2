/**
 * The demo scenario (tools/cms-sim/scenarios/demo-console.yaml, what `npm run demo` loops) seen in the console:
 * levels 1, 2 and 3 on screen at once and guests waiting in the lobby for the operator. It photographs every page
 * at 1280 px and the meetings views at 390 px. The photos go to a temporary folder, so a test run leaves the checkout
 * as it found it; `UPDATE_SCREENSHOTS=1` puts them into docs/screenshots/ (the README shows them).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { eventually } from '../helpers/infra.ts';
import { type ConsoleStack, NARROW, OPERATOR_TOKEN, STACK_START_MS, signIn, startConsoleStack, WIDE } from './console-stack.ts';

const SCENARIO = fileURLToPath(new URL('../../tools/cms-sim/scenarios/demo-console.yaml', import.meta.url));
const COMMITTED = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
const UPDATE = process.env.UPDATE_SCREENSHOTS === '1';

let c: ConsoleStack;
/** Where the photos go: docs/screenshots/ when asked to update them, a temporary folder otherwise. */
let OUT: string;
/** docs/screenshots/ as the run found it (file name → SHA-256), to prove a plain run leaves it alone. */
let committedBefore: Map<string, string>;

async function fingerprint(dir: string): Promise<Map<string, string>> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.png')).sort();
  return new Map(
    await Promise.all(
      names.map(
        async (n) =>
          [
            n,
            createHash('sha256')
              .update(await readFile(join(dir, n)))
              .digest('hex'),
          ] as [string, string],
      ),
    ),
  );
}

interface LiveMeeting {
  meetingKey: string;
  name: string;
  level: number | null;
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${c.baseUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${c.stack.apiToken}` } });
  assert.equal(res.status, 200, path);
  return (await res.json()) as T;
}

async function shoot(page: Page, name: string): Promise<void> {
  // Wait for the page's data, not for time: its live dot is on and nothing says "Loading".
  await eventually(async () => (await page.getByText(/Loading/).count()) === 0, { what: `${name} loaded`, timeoutMs: 20_000 });
  const file = `${OUT}${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  const png = await readFile(file);
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')], `${name}.png is a PNG`);
}

before(
  async () => {
    committedBefore = await fingerprint(COMMITTED);
    OUT = UPDATE ? COMMITTED : `${await mkdtemp(join(tmpdir(), 'console-screenshots-'))}/`;
    c = await startConsoleStack({ seed: 20261209 });
    await mkdir(OUT, { recursive: true });
    // Faster than the demo's own pace; the photos are taken once the scene is set, whatever the pace.
    void c.sim.runScenario(SCENARIO, { speed: 30 });
  },
  { timeout: STACK_START_MS },
);

after(async () => {
  if (OUT && !UPDATE) await rm(OUT, { recursive: true, force: true });
});

test('the demo scenario puts levels 1, 2 and 3 on screen with guests waiting in the lobby; every page photographed', {
  timeout: 300_000,
}, async () => {
  const context = await c.context(WIDE);
  const page = await context.newPage();
  await signIn(page, OPERATOR_TOKEN);
  // The scene: all three levels at once, and the board's guests waiting for an operator.
  await eventually(
    async () => {
      const levels = new Set(await page.locator('tr[data-meeting]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-level'))));
      const lobby = await api<{ participants: unknown[] }>('/lobby');
      return levels.has('1') && levels.has('2') && levels.has('3') && lobby.participants.length >= 3;
    },
    { what: 'levels 1, 2 and 3 on screen and three guests in the lobby', timeoutMs: 120_000, intervalMs: 500 },
  );
  const rows = await page.locator('tr[data-meeting]').count();
  assert.ok(rows >= 3, `${rows} meetings on screen`);
  await shoot(page, 'meetings');

  const { meetings } = await api<{ meetings: LiveMeeting[] }>('/meetings?active=true&limit=50');
  const board = meetings.find((m) => m.name === 'Board meeting');
  assert.ok(board, 'the board meeting is active');
  // Something for the Activity page: the operator mutes one of the board.
  await page.goto(`/meetings/${encodeURIComponent(board.meetingKey)}`);
  await page.locator('tr[data-leg]').first().waitFor();
  await page.locator('tr[data-leg]').first().getByRole('button', { name: 'Mute', exact: true }).click();
  await eventually(async () => ['applied', 'failed'].includes((await page.locator('.outcome').first().getAttribute('data-state')) ?? ''), {
    what: 'the mute answered',
    timeoutMs: 30_000,
  });
  await shoot(page, 'meeting');

  await page.goto('/lobby');
  await page.locator('li[data-leg]').first().waitFor();
  await shoot(page, 'lobby');

  await page.goto('/records?order=desc');
  await page.locator('tr[data-record]').first().waitFor();
  await page.locator('tr[data-record]').first().getByRole('button', { name: 'Fields' }).click();
  await shoot(page, 'records');

  await page.goto('/activity');
  await page.locator('tr[data-action]').first().waitFor();
  await shoot(page, 'activity');

  await page.goto('/health');
  await page.locator('[data-node]').first().waitFor();
  await shoot(page, 'health');
  await context.close();

  const narrow = await c.context(NARROW);
  const phone = await narrow.newPage();
  await signIn(phone, OPERATOR_TOKEN);
  await phone.locator('tr[data-meeting]').first().waitFor();
  await shoot(phone, 'meetings-390');
  await phone.goto(`/meetings/${encodeURIComponent(board.meetingKey)}`);
  await phone.locator('tr[data-leg]').first().waitFor();
  await shoot(phone, 'meeting-390');
  await narrow.close();

  const signInContext = await c.context(WIDE);
  const signInPage = await signInContext.newPage();
  await signInPage.goto('/sign-in');
  await shoot(signInPage, 'sign-in');
  await signInContext.close();

  // The photos are all there, and a plain run (CI's clean clone) left the committed ones untouched.
  const taken = await fingerprint(OUT);
  for (const name of ['meetings', 'meeting', 'lobby', 'records', 'activity', 'health', 'meetings-390', 'meeting-390', 'sign-in']) {
    assert.ok(taken.has(`${name}.png`), `${name}.png taken`);
  }
  if (!UPDATE) assert.deepEqual(await fingerprint(COMMITTED), committedBefore, 'docs/screenshots/ is unchanged by a test run');
});
