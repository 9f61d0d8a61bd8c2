/**
 * Operator actions from the console in a real browser, their effect read from the CMS simulator: admitting from
 * the lobby (one, the selected, all of a meeting), mute and presenter mode, and a CMS refusal shown on the action.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { MeetingHandle } from '@cms/cms-sim';
import type { Page } from 'playwright-core';
import { eventually } from '../helpers/infra.ts';
import { type ConsoleStack, INTERNAL, OPERATOR_TOKEN, SECURE, STACK_START_MS, signIn, startConsoleStack } from './console-stack.ts';

let c: ConsoleStack;
let board: MeetingHandle;
let townHall: MeetingHandle;
const guests: Record<string, { callLegId: string; callId: string }> = {};
const people: Record<string, { callLegId: string; callId: string }> = {};

async function known(path: string, test: (body: Record<string, unknown>) => boolean, what: string): Promise<void> {
  await eventually(
    async () => {
      const res = await fetch(`${c.baseUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${c.stack.apiToken}` } });
      return res.ok && test((await res.json()) as Record<string, unknown>);
    },
    { what, timeoutMs: 30_000, intervalMs: 100 },
  );
}

function simLeg(who: { callLegId: string; callId: string }) {
  const leg = c.sim.inspectCall(who.callId).legs.find((l) => l.id === who.callLegId);
  assert.ok(leg, `leg ${who.callLegId} in the simulator`);
  return leg;
}

/** The outcome line of the latest action labelled `label`, once CMS has answered. */
async function outcome(page: Page, label: string): Promise<string> {
  const item = page.locator('.outcome', { hasText: label }).first();
  await eventually(async () => ['applied', 'failed', 'refused'].includes((await item.getAttribute('data-state')) ?? ''), {
    what: `the outcome of "${label}"`,
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  return `${await item.getAttribute('data-state')}: ${await item.locator('.outcome-detail').innerText()}`;
}

before(
  async () => {
    c = await startConsoleStack({ seed: 20261208 });
    // Guests only, no host: everyone waits in the lobby, on both bridges.
    townHall = c.sim.startCall({ name: 'Town hall', bridges: [] });
    for (const [name, bridge] of [
      ['g1', 'cms-1'],
      ['g2', 'cms-1'],
      ['g3', 'cms-2'],
    ] as const) {
      guests[name] = c.sim.join({ meeting: townHall, bridge, kind: 'guest', remoteParty: `${name}@far.example`, needsActivation: true });
    }
    board = c.sim.startCall({ name: 'Board meeting', bridges: [] });
    people.ceo = c.sim.join({ meeting: board, bridge: 'cms-1', remoteParty: `ceo@${SECURE}` });
    people.ann = c.sim.join({ meeting: board, bridge: 'cms-1', remoteParty: `ann@${INTERNAL}` });
    people.cfo = c.sim.join({ meeting: board, bridge: 'cms-2', remoteParty: `cfo@${SECURE}` });
    await known('/lobby', (body) => (body.participants as unknown[]).length === 3, 'the three guests waiting in GET /api/v1/lobby');
    await known(
      `/meetings/${board.callCorrelator}`,
      (body) => (body.participants as { live: unknown }[]).filter((p) => p.live).length >= 3,
      'the board with its live roster',
    );
  },
  { timeout: STACK_START_MS },
);

describe('the lobby', () => {
  test('admit one, then the selected, then all of a meeting: each leaves the lobby in the simulator and on screen', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, '/lobby');
    const group = page.locator(`section.lobby-group[data-meeting="${townHall.callCorrelator}"]`);
    await eventually(async () => (await group.locator('li[data-leg]').count()) === 3, { what: 'three waiting on screen' });
    await eventually(async () => (await group.locator('h2').innerText()).includes('Town hall'), { what: "the meeting's name" });

    await group.locator(`li[data-leg="${guests.g1!.callLegId}"]`).getByRole('button', { name: 'Admit' }).click();
    assert.match(await outcome(page, 'Admit'), /^applied/);
    assert.equal(simLeg(guests.g1!).deactivated, false, 'g1 is in the meeting');
    assert.equal(simLeg(guests.g2!).deactivated, true, 'g2 still waits');

    await eventually(async () => (await group.locator('li[data-leg]').count()) === 2, { what: 'g1 gone from the lobby page' });
    await group.locator(`li[data-leg="${guests.g2!.callLegId}"] input[type=checkbox]`).check();
    await page.getByRole('button', { name: 'Admit selected (1)' }).click();
    assert.match(await outcome(page, 'Admit 1 selected'), /^applied/);
    assert.equal(simLeg(guests.g2!).deactivated, false);
    assert.equal(simLeg(guests.g3!).deactivated, true);

    await group.getByRole('button', { name: 'Admit all' }).click();
    assert.match(await outcome(page, 'Admit all of Town hall'), /^applied/);
    assert.equal(simLeg(guests.g3!).deactivated, false, 'g3, on the other bridge, too');
    await eventually(async () => (await page.getByText('Nobody is waiting.').count()) === 1, { what: 'an empty lobby on screen' });
    await context.close();
  });
});

describe('the meeting controls', () => {
  test('mute and unmute one participant: the simulator mutes the leg and the page shows it', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, `/meetings/${board.callCorrelator}`);
    const ann = page.locator(`tr[data-leg="${people.ann!.callLegId}"]`);
    await ann.getByRole('button', { name: 'Mute', exact: true }).click();
    assert.match(await outcome(page, 'Mute Ann'), /^applied/);
    assert.equal(simLeg(people.ann!).rxAudioMute, true, 'muted on the bridge');
    await eventually(async () => (await ann.getByTestId('audio').innerText()) === 'muted', { what: 'muted on screen', timeoutMs: 20_000 });
    await ann.getByRole('button', { name: 'Unmute', exact: true }).click();
    assert.match(await outcome(page, 'Unmute Ann'), /^applied/);
    assert.equal(simLeg(people.ann!).rxAudioMute, false);
    await eventually(async () => (await ann.getByTestId('audio').innerText()) === 'on', { what: 'unmuted on screen', timeoutMs: 20_000 });
    await context.close();
  });

  test('presenter mode on and off: everyone else speakerOnly and muted on both bridges, then restored', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, `/meetings/${board.callCorrelator}`);
    const ceo = page.locator(`tr[data-leg="${people.ceo!.callLegId}"]`);
    await ceo.getByRole('button', { name: 'Make presenter' }).click();
    assert.match(await outcome(page, 'Presenter: Ceo'), /^applied/);
    for (const name of ['ann', 'cfo']) {
      const leg = simLeg(people[name]!);
      assert.equal(leg.chosenLayout, 'speakerOnly', `${name} sees the presenter only`);
      assert.equal(leg.rxAudioMute, true, `${name} muted`);
    }
    assert.equal(simLeg(people.ceo!).rxAudioMute, false, 'the presenter is heard');
    // On screen from the live roster: the participant on the other bridge muted.
    await eventually(
      async () => (await page.locator(`tr[data-leg="${people.cfo!.callLegId}"]`).getByTestId('audio').innerText()) === 'muted',
      {
        what: "the other bridge's participant muted on screen",
        timeoutMs: 20_000,
      },
    );

    await page.getByRole('button', { name: 'Presenter off' }).click();
    assert.match(await outcome(page, 'Presenter mode off'), /^applied/);
    for (const name of ['ann', 'cfo']) {
      const leg = simLeg(people[name]!);
      assert.notEqual(leg.chosenLayout, 'speakerOnly', `${name} layout restored`);
      assert.equal(leg.rxAudioMute, false, `${name} unmuted again`);
    }
    await context.close();
  });

  test("a CMS refusal is shown on the action with CMS's reason", async () => {
    const callId = board.callId('cms-1')!;
    c.sim.failWrites({
      bridge: 'cms-1',
      failureReason: 'participantLimitReached',
      method: 'POST',
      urlContains: `/calls/${callId}/participants`,
    });
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, `/meetings/${board.callCorrelator}`);
    await page.getByLabel('Add participant (URI or number)').fill(`gina@${INTERNAL}`);
    await page.getByLabel('On bridge').selectOption({ label: 'cms-1' });
    await page.getByRole('button', { name: 'Dial out' }).click();
    const text = await outcome(page, `Add gina@${INTERNAL}`);
    assert.match(text, /^failed: failed: participantLimitReached, HTTP 400/);
    await context.close();
  });

  test('bad input is refused before CMS, with the reason on the action', async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, `/meetings/${board.callCorrelator}`);
    const before = c.sim.writeLog({ method: 'POST' }).length;
    await page.getByLabel('Add participant (URI or number)').fill('not a uri at all');
    await page.getByRole('button', { name: 'Dial out' }).click();
    const text = await outcome(page, 'Add not a uri at all');
    assert.match(text, /^refused: .*remoteParty/);
    assert.equal(c.sim.writeLog({ method: 'POST' }).length, before, 'nothing reached CMS');
    await context.close();
  });
  // Last: it ends the board meeting the tests above use.
  test("a participant's layout, a disconnect and the end of the meeting reach both bridges", async () => {
    const context = await c.context();
    const page = await context.newPage();
    await signIn(page, OPERATOR_TOKEN, `/meetings/${board.callCorrelator}`);
    const cfo = page.locator(`tr[data-leg="${people.cfo!.callLegId}"]`);
    await cfo.getByLabel(/Layout for/).selectOption('onePlusFive');
    await cfo.getByRole('button', { name: 'Set layout' }).click();
    assert.match(await outcome(page, 'Layout onePlusFive'), /^applied/);
    assert.equal(simLeg(people.cfo!).chosenLayout, 'onePlusFive', 'on the other bridge');

    const ann = page.locator(`tr[data-leg="${people.ann!.callLegId}"]`);
    await ann.getByRole('button', { name: 'Disconnect', exact: true }).click();
    await ann.getByRole('button', { name: /^Disconnect Ann/ }).click();
    assert.match(await outcome(page, 'Disconnect Ann'), /^applied/);
    assert.equal(
      c.sim.inspectCall(people.ann!.callId).legs.some((l) => l.id === people.ann!.callLegId),
      false,
      'Ann is gone from the bridge',
    );

    await page.getByRole('button', { name: 'End meeting' }).click();
    await page.getByRole('button', { name: 'End it for everyone' }).click();
    assert.match(await outcome(page, 'End meeting'), /^applied/);
    await eventually(async () => (await page.locator('.chip.state-ended').count()) === 1, {
      what: 'the meeting shown ended',
      timeoutMs: 30_000,
    });
    await context.close();
  });
});
