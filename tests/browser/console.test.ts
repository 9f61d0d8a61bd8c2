/**
 * The operator console in a real browser (headless Debian chromium through playwright-core) against the real
 * services and the CMS simulator: sign-in and roles, the live meetings view following the simulator, records
 * search and CSV export, CSRF and session expiry, and both widths (1280 px and 390 px).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, test } from 'node:test';
import type { MeetingHandle } from '@cms/cms-sim';
import type { Page } from 'playwright-core';
import { deleteRedisKeys, eventually } from '../helpers/infra.ts';
import {
  type ConsoleStack,
  INTERNAL,
  NARROW,
  OPERATOR_TOKEN,
  SECURE,
  STACK_START_MS,
  signIn,
  startConsoleStack,
  VIEWER_TOKEN,
  WIDE,
} from './console-stack.ts';
import { FOCUSED_TEXT, LAYOUT_SHIFT, PAGE_MARKER, SCRIPT_COOKIES, SIDEWAYS_OVERFLOW, UNLABELLED_CONTROLS, WATCH_PAGE } from './in-page.ts';

let c: ConsoleStack;
let board: MeetingHandle;

/** The meetings row of a meeting, found by its key. */
const row = (page: Page, key: string) => page.locator(`tr[data-meeting="${key}"]`);

before(
  async () => {
    c = await startConsoleStack();
    board = c.sim.startCall({ name: 'Board meeting', bridges: [] });
    c.sim.join({ meeting: board, bridge: 'cms-1', remoteParty: `ceo@${SECURE}` });
    c.sim.join({ meeting: board, bridge: 'cms-2', remoteParty: `cfo@${SECURE}` });
    // Enough records for more than one page (50) in the records browser.
    const allHands = c.sim.startCall({ name: 'All hands', bridges: [] });
    for (let i = 0; i < 25; i++) c.sim.join({ meeting: allHands, bridge: 'cms-1', remoteParty: `staff${i}@${INTERNAL}` });
    await eventually(
      async () => {
        const res = await fetch(`${c.baseUrl}/api/v1/meetings/${board.callCorrelator}`, {
          headers: { authorization: `Bearer ${c.stack.apiToken}` },
        });
        return res.ok && ((await res.json()) as { level: number | null }).level === 1;
      },
      { what: 'the board meeting at level 1 in the API', timeoutMs: 30_000, intervalMs: 200 },
    );
  },
  { timeout: STACK_START_MS },
);

describe('sign-in, sessions and roles', () => {
  test('an unknown token is refused on the form; a page without a session goes to sign-in', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await page.goto('/records');
    assert.equal(new URL(page.url()).pathname, '/sign-in', 'no session: sign-in first');
    await page.getByLabel('Access token').fill('not-a-token-anyone-knows-0000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /not one this service knows/);
    assert.deepEqual(await context.cookies(), [], 'no session cookie for a refused token');
    await context.close();
  });

  test('the session cookie is HttpOnly and SameSite=Strict, pages carry a strict CSP, and the token name and role show', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, '/records');
    const [cookie] = await context.cookies();
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.name, 'cms_console');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.secure, false, 'plain HTTP here: Secure only over TLS');
    assert.ok(!cookie.value.includes(OPERATOR_TOKEN), 'the cookie is a session id, not the token');
    assert.equal(await page.evaluate(SCRIPT_COOKIES), '', 'scripts cannot read it');

    const response = await page.goto('/');
    const csp = response?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self' 'sha256-[^']+'(;|$)/, csp);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    await page.locator('.who-name').waitFor();
    assert.equal(await page.locator('.who-name').innerText(), 'ops-alice');
    assert.equal(await page.getByTestId('role').innerText(), 'operator');
    await context.close();
  });

  test('a viewer sees no controls, and the API refuses an action with a 403 naming the role needed', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, VIEWER_TOKEN, `/meetings/${board.callCorrelator}`);
    await page.getByTestId('meeting-name').waitFor();
    assert.equal(await page.getByTestId('role').innerText(), 'viewer');
    await page.locator('tr[data-leg]').first().waitFor();
    assert.equal(await page.getByRole('button', { name: /Mute|End meeting|Dial out|Disconnect/ }).count(), 0, 'no control for a viewer');
    assert.match(await page.locator('.viewer-note').innerText(), /operator role/);

    // Even a hand-made request with the session and its CSRF token is refused, explaining the role.
    const answer = await page.evaluate(async (callId) => {
      const session = (await (await fetch('/console/session')).json()) as { csrfToken: string };
      const res = await fetch(`/api/v1/calls/${callId}`, { method: 'DELETE', headers: { 'x-csrf-token': session.csrfToken } });
      return { status: res.status, body: await res.text() };
    }, board.callId('cms-1'));
    assert.equal(answer.status, 403, answer.body);
    assert.match(JSON.parse(answer.body).detail, /needs the operator role; the token "night-desk" has the viewer role/);
    await context.close();
  });

  test('an operator sees the meeting controls', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, `/meetings/${board.callCorrelator}`);
    await page.getByRole('button', { name: 'Mute all', exact: true }).waitFor();
    for (const name of ['Unmute all', 'Presenter off', 'End meeting', 'Dial out']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 1, name);
    }
    assert.ok((await page.getByRole('button', { name: 'Make presenter' }).count()) >= 2, 'per-participant controls');
    await context.close();
  });

  test('sign-out ends the session on the server: the old cookie no longer opens anything', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN);
    const [cookie] = await context.cookies();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/sign-in\?signedOut/);
    const replay = await fetch(`${c.baseUrl}/api/v1/meetings`, { headers: { cookie: `${cookie!.name}=${cookie!.value}` } });
    assert.equal(replay.status, 401, 'the session is gone server-side, not only the cookie in this browser');
    await context.close();
  });
});

describe('CSRF and session expiry', () => {
  test('a change without the CSRF token, or from another origin, is refused with 403 and changes nothing', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN);
    const callId = board.callId('cms-1')!;
    const before = c.sim.writeLog({ method: 'DELETE' }).length;
    const noToken = await page.evaluate(async (id) => {
      const res = await fetch(`/api/v1/calls/${id}`, { method: 'DELETE' });
      return { status: res.status, body: await res.text() };
    }, callId);
    assert.equal(noToken.status, 403, noToken.body);
    assert.match(noToken.body, /CSRF token is missing/);
    // Another site cannot read the token, but even with it the origin check holds.
    const session = (await page.evaluate(async () => (await fetch('/console/session')).json())) as { csrfToken: string };
    const crossSite = await context.request.fetch(`${c.baseUrl}/api/v1/calls/${callId}`, {
      method: 'DELETE',
      headers: { origin: 'https://attacker.example', 'x-csrf-token': session.csrfToken },
    });
    assert.equal(crossSite.status(), 403, await crossSite.text());
    const signOutForged = await context.request.fetch(`${c.baseUrl}/sign-out`, { method: 'POST', form: { csrf: 'forged' } });
    assert.equal(signOutForged.status(), 403, 'sign-out needs the token too');
    assert.equal(c.sim.writeLog({ method: 'DELETE' }).length, before, 'no DELETE reached CMS');
    await context.close();
  });

  test('when the session expires, the live page goes back to sign-in and returns to the page after signing in', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, '/health');
    await page.getByRole('heading', { name: 'Services' }).waitFor();
    // Expiry is Redis dropping the key at its TTL; drop this stack's sessions now instead of waiting 30 minutes.
    await deleteRedisKeys(c.stack.env.REDIS_URL!, `${c.stack.env.QUEUE_PREFIX}:console:session:`);
    await page.waitForURL(/\/sign-in\?expired/, { timeout: 15_000 });
    assert.match(await page.getByRole('status').innerText(), /expired/);
    await page.getByLabel('Access token').fill(OPERATOR_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/health');
    await context.close();
  });
});

describe('the live meetings view', () => {
  test('a guest joining in the simulator turns the level from 1 Secure to 3 External on screen, without a reload', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN);
    const key = board.callCorrelator;
    await row(page, key).waitFor();
    await eventually(async () => (await row(page, key).getAttribute('data-level')) === '1', { what: 'level 1 on screen' });
    assert.equal(await row(page, key).locator('.level').textContent(), '1 Secure', 'a colour and a word');
    // A marker that a reload would wipe, and a watch for layout shifts while the update lands.
    await page.evaluate(WATCH_PAGE);
    c.sim.join({ meeting: board, bridge: 'cms-2', kind: 'guest' });
    await eventually(async () => (await row(page, key).getAttribute('data-level')) === '3', {
      what: 'level 3 on screen',
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    assert.equal(await row(page, key).locator('.level').textContent(), '3 External');
    assert.ok(await row(page, key).locator('.level-3').count(), 'in the level 3 colour');
    assert.equal(await page.evaluate(PAGE_MARKER), 'same page', 'no reload');
    assert.equal(await page.evaluate(LAYOUT_SHIFT), 0, 'nothing moved while the update arrived');
    await context.close();
  });

  test('filters by level, node and name', async () => {
    const standup = c.sim.startCall({ name: 'Team stand-up', bridges: [] });
    c.sim.join({ meeting: standup, bridge: 'cms-1', remoteParty: `dev@${INTERNAL}` });
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN);
    await eventually(async () => (await row(page, standup.callCorrelator).getAttribute('data-level')) === '2', {
      what: 'the stand-up at level 2',
      timeoutMs: 30_000,
    });
    await page.getByLabel('Level').selectOption('2');
    await eventually(async () => (await row(page, board.callCorrelator).count()) === 0, { what: 'the level 3 board filtered out' });
    assert.equal(await row(page, standup.callCorrelator).count(), 1);
    await page.getByLabel('Level').selectOption('');
    await page.getByLabel('Node').selectOption('cms-2');
    await eventually(async () => (await row(page, standup.callCorrelator).count()) === 0, { what: 'the cms-1-only stand-up filtered out' });
    assert.equal(await row(page, board.callCorrelator).count(), 1, 'the board spans cms-2');
    await page.getByLabel('Node').selectOption('');
    await page.getByLabel('Name').fill('stand');
    await eventually(async () => (await page.locator('tr[data-meeting]').count()) === 1, { what: 'only the stand-up by name' });
    assert.equal(await row(page, standup.callCorrelator).count(), 1);
    assert.match(page.url(), /name=stand/, 'the filter is kept in the address');
    await context.close();
  });
});

describe('records', () => {
  test('search by type and call, page with keyset cursors, show a record in full, and export the filter as CSV', async () => {
    const callId = board.callId('cms-1')!;
    const api = async (query: string) => {
      const res = await fetch(`${c.baseUrl}/api/v1/records?${query}`, { headers: { authorization: `Bearer ${c.stack.apiToken}` } });
      return (await res.json()) as { records: { id: number; type: string; callId: string | null }[] };
    };
    const expected = (await api(`type=callLegUpdate&callId=${callId}&limit=500`)).records;
    assert.ok(expected.length >= 2, 'the board has legs on cms-1');

    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, '/records');
    await page.getByRole('combobox', { name: 'Type' }).selectOption('callLegUpdate');
    await page.getByLabel('Call id').fill(callId);
    await page.getByRole('button', { name: 'Search' }).click();
    await eventually(async () => (await page.locator('tr[data-record]').count()) === expected.length, { what: 'the filtered records' });
    const types = await page.locator('tr[data-record] td[data-label="Type"]').allInnerTexts();
    assert.deepEqual(new Set(types), new Set(['callLegUpdate']));
    assert.match(page.url(), /type=callLegUpdate/);

    await page.locator('tr[data-record]').first().getByRole('button', { name: 'Fields' }).click();
    const fields = await page.locator('dl.fields').innerText();
    assert.match(fields, /correlatorIndex/);
    assert.match(fields, /callLeg\.state/, "the record's own Cisco fields");

    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Export CSV' }).click();
    const file = await (await download).path();
    const lines = (await readFile(file, 'utf8')).trim().split('\r\n');
    assert.match(lines[0]!, /^id,time,type,node,/);
    assert.equal(lines.length - 1, expected.length, 'one line per record of the filter');
    assert.deepEqual(
      lines.slice(1).map((l) => Number(l.split(',')[0])),
      expected.map((r) => r.id),
    );
    await context.close();
  });

  test('keyset paging: next and previous pages', async () => {
    const all = await fetch(`${c.baseUrl}/api/v1/records?limit=500`, { headers: { authorization: `Bearer ${c.stack.apiToken}` } });
    const count = ((await all.json()) as { records: unknown[] }).records.length;
    assert.ok(count > 50, `more than one page of records (${count})`);
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, '/records');
    await page.locator('tr[data-record]').first().waitFor();
    const first = await page.locator('tr[data-record]').first().getAttribute('data-record');
    await page.getByRole('button', { name: 'Next page' }).click();
    await eventually(async () => (await page.getByTestId('records-summary').innerText()).startsWith('Page 2'), { what: 'page 2' });
    const second = await page.locator('tr[data-record]').first().getAttribute('data-record');
    assert.ok(Number(second) > Number(first), 'the next page continues after the first');
    await page.getByRole('button', { name: 'Previous page' }).click();
    await eventually(async () => (await page.locator('tr[data-record]').first().getAttribute('data-record')) === first, {
      what: 'back to page 1',
    });
    await context.close();
  });

  test('a bad filter is explained, not a blank page', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, '/records');
    await page.getByLabel('Call id').fill('not-a-guid');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /must be a GUID/);
    await context.close();
  });
});

describe('both widths', () => {
  for (const [label, viewport] of [
    ['1280 px', WIDE],
    ['390 px', NARROW],
  ] as const) {
    test(`at ${label} every page fits the width and its controls are reachable by keyboard`, async () => {
      const context = await c.context(viewport);
      const page = await context.newPage();
      await signIn(page, OPERATOR_TOKEN);
      for (const path of ['/', `/meetings/${board.callCorrelator}`, '/lobby', '/records', '/activity', '/health']) {
        await page.goto(path);
        await page.locator('main h1').waitFor();
        await page.waitForLoadState('networkidle').catch(() => {});
        const overflow = (await page.evaluate(SIDEWAYS_OVERFLOW)) as number;
        assert.ok(overflow <= 0, `${path} at ${label} scrolls sideways by ${overflow} px`);
        const unlabelled = await page.evaluate(UNLABELLED_CONTROLS);
        assert.deepEqual(unlabelled, [], `${path}: every control labelled`);
      }
      // Keyboard: the first Tab reaches the skip link, the next ones the navigation.
      await page.goto('/');
      await page.locator('main h1').waitFor();
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(FOCUSED_TEXT), 'Skip to content');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(FOCUSED_TEXT), 'Meetings');
      await context.close();
    });
  }
});
