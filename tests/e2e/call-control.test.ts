/**
 * Call control end to end: the operator's request to the records API, the action on the node's write queue, the
 * cms-actuator's write to the simulated Call Bridge, and the outcome in GET /api/v1/actions/<id>. Every assertion
 * on the effect reads what the simulator shows (inspectCall) or received (writeLog).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { LegInspection } from '@cms/cms-sim';
import { type ControlStack, knownCall, startControlStack, VIEWER_TOKEN } from '../helpers/call-control.ts';
import { eventually } from '../helpers/infra.ts';

let control: ControlStack;

before(async () => {
  control = await startControlStack();
});

/** A meeting with `people` on each bridge it lists, known to the records API. */
async function meeting(name: string, people: Record<'cms-1' | 'cms-2', string[]>) {
  const { sim } = control;
  const handle = sim.startCall({ name, bridges: [] });
  const legs: Record<string, { callLegId: string; callId: string; bridge: string }> = {};
  for (const [bridge, parties] of Object.entries(people)) {
    for (const party of parties) legs[party] = sim.join({ meeting: handle, bridge, remoteParty: `${party}@corp.example` });
  }
  for (const bridge of Object.keys(people)) {
    const ids = Object.values(legs)
      .filter((l) => l.bridge === bridge)
      .map((l) => l.callLegId);
    if (ids.length > 0) await knownCall(control, handle.callId(bridge), ids);
  }
  return { handle, legs, call: (bridge: string) => handle.callId(bridge) };
}

function leg(callId: string, legId: string): LegInspection {
  const found = control.sim.inspectCall(callId).legs.find((l) => l.id === legId);
  assert.ok(found, `leg ${legId} in call ${callId}`);
  return found;
}

async function applied(res: { status: number; body: { id: number } }) {
  assert.ok(res.status === 200 || res.status === 202, `accepted: ${res.status} ${JSON.stringify(res.body)}`);
  const done = await control.outcome(res.body.id);
  assert.equal(done.status, 'applied', `${JSON.stringify(done)}\n${control.logs('cms-actuator')}`);
  return done;
}

/** Writes other than security messages (the policy may write those to any call at any time). */
function nonMessageWrites(bridge?: string): number {
  return control.sim.writeLog(bridge ? { bridge } : {}).filter((w) => w.params.messageText === undefined).length;
}

function writes(bridge: string, method: string, urlContains: string) {
  return control.sim.writeLog({ bridge, method, urlContains }).filter((w) => w.outcome === 'applied');
}

describe('one participant', () => {
  let m: Awaited<ReturnType<typeof meeting>>;
  before(async () => {
    m = await meeting('One participant', { 'cms-1': ['alice', 'anna'], 'cms-2': ['bob'] });
  });

  test('mute and unmute audio and video (PUT /callLegs/<id> with the same fields)', async () => {
    const alice = m.legs.alice;
    assert.ok(alice);
    await applied(
      await control.api('PATCH', `/calls/${alice.callId}/participants/${alice.callLegId}`, { rxAudioMute: true, txVideoMute: true }),
    );
    assert.equal(leg(alice.callId, alice.callLegId).rxAudioMute, true);
    assert.equal(leg(alice.callId, alice.callLegId).txVideoMute, true);
    assert.equal(leg(alice.callId, alice.callLegId).txAudioMute, false, 'fields not sent are left alone');
    const put = writes('cms-1', 'PUT', `/callLegs/${alice.callLegId}`).at(-1);
    assert.deepEqual(put?.params, { rxAudioMute: 'true', txVideoMute: 'true' });
    await applied(await control.api('PATCH', `/calls/${alice.callId}/participants/${alice.callLegId}`, { rxAudioMute: false }));
    assert.equal(leg(alice.callId, alice.callLegId).rxAudioMute, false);
  });

  test("a participant's layout (chosenLayout)", async () => {
    const anna = m.legs.anna;
    assert.ok(anna);
    await applied(await control.api('PATCH', `/calls/${anna.callId}/participants/${anna.callLegId}`, { chosenLayout: 'onePlusFive' }));
    assert.equal(leg(anna.callId, anna.callLegId).chosenLayout, 'onePlusFive');
  });

  test('a leg on the other bridge of the meeting is written on that bridge', async () => {
    const bob = m.legs.bob;
    assert.ok(bob);
    // Addressed through the cms-1 instance: the meeting is one meeting to the operator.
    await applied(await control.api('PATCH', `/calls/${m.call('cms-1')}/participants/${bob.callLegId}`, { rxVideoMute: true }));
    assert.equal(leg(bob.callId, bob.callLegId).rxVideoMute, true);
    assert.equal(writes('cms-1', 'PUT', `/callLegs/${bob.callLegId}`).length, 0);
  });

  test('disconnect: CMS ends the leg (apiInitiatedTeardown); a second disconnect is refused as the leg has left', async () => {
    const anna = m.legs.anna;
    assert.ok(anna);
    await applied(await control.api('DELETE', `/calls/${anna.callId}/participants/${anna.callLegId}`));
    assert.equal(
      control.sim.inspectCall(anna.callId).legs.some((l) => l.id === anna.callLegId),
      false,
    );
    const end = await eventually(
      () => control.sim.cdrRecords('cms-1').find((r) => r.type === 'callLegEnd' && r.objectId === anna.callLegId),
      { what: 'callLegEnd of the disconnected leg' },
    );
    assert.equal(end.body.reason, 'apiInitiatedTeardown');
    const again = await eventually(
      async () => {
        const res = await control.api('DELETE', `/calls/${anna.callId}/participants/${anna.callLegId}`);
        return res.status === 409 && res;
      },
      { what: 'the leg end to reach the records API' },
    );
    assert.match(again.body.detail, /has left the call/);
  });
});

describe('dial out', () => {
  test('POST participants dials remoteParty into the call: one POST, and the new participant in the result', async () => {
    const m = await meeting('Dial out', { 'cms-1': ['carl'], 'cms-2': [] });
    const callId = m.call('cms-1');
    const res = await control.api('POST', `/calls/${callId}/participants`, {
      remoteParty: 'dave@corp.example',
      chosenLayout: 'speakerOnly',
    });
    const done = await applied(res);
    assert.equal(typeof done.result?.participantId, 'string');
    const posts = writes('cms-1', 'POST', `/calls/${callId}/participants`);
    assert.equal(posts.length, 1);
    assert.equal(posts[0]?.params.remoteParty, 'dave@corp.example');
    const dave = await eventually(() => control.sim.inspectCall(callId).legs.find((l) => l.remoteParty === 'dave@corp.example'), {
      what: 'the dialled leg',
    });
    assert.equal(dave.participantId, done.result?.participantId);
    assert.equal(dave.chosenLayout, 'speakerOnly');
  });

  test('Idempotency-Key: the same POST sent twice dials once, and answers the same action', async () => {
    const m = await meeting('Dial once', { 'cms-1': ['dora'], 'cms-2': [] });
    const callId = m.call('cms-1');
    const headers = { 'idempotency-key': `dial-${callId}` };
    const first = await control.api('POST', `/calls/${callId}/participants`, { remoteParty: 'sip:erin@corp.example' }, { headers });
    const second = await control.api('POST', `/calls/${callId}/participants`, { remoteParty: 'sip:erin@corp.example' }, { headers });
    assert.equal(second.body.id, first.body.id);
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    await applied(first);
    const third = await control.api('POST', `/calls/${callId}/participants`, { remoteParty: 'sip:erin@corp.example' }, { headers });
    assert.equal(third.status, 200, 'a retry after the outcome answers the outcome');
    assert.equal(third.body.id, first.body.id);
    assert.equal(writes('cms-1', 'POST', `/calls/${callId}/participants`).length, 1, 'one dial-out, not two');
  });

  test("a CMS refusal is the action's failure with CMS's reason (never a 500), and nothing is retried", async () => {
    const m = await meeting('Full', { 'cms-1': ['fred'], 'cms-2': [] });
    const callId = m.call('cms-1');
    control.sim.failWrites({
      bridge: 'cms-1',
      failureReason: 'participantLimitReached',
      method: 'POST',
      urlContains: `/calls/${callId}/participants`,
    });
    const res = await control.api('POST', `/calls/${callId}/participants`, { remoteParty: 'gina@corp.example' });
    assert.ok(res.status === 200 || res.status === 202, `answered ${res.status}`);
    const done = await control.outcome(res.body.id);
    assert.equal(done.status, 'failed');
    assert.deepEqual(done.failureDetails, { reason: 'participantLimitReached', parameter: null });
    assert.equal(done.httpStatus, 400);
    assert.equal(control.sim.writeLog({ bridge: 'cms-1', method: 'POST', urlContains: `/calls/${callId}/participants` }).length, 1);
    assert.equal(
      control.sim.inspectCall(callId).legs.some((l) => l.remoteParty === 'gina@corp.example'),
      false,
    );
  });
});

describe('a meeting spread over two bridges', () => {
  let m: Awaited<ReturnType<typeof meeting>>;
  before(async () => {
    m = await meeting('Spread', { 'cms-1': ['hana', 'ivan'], 'cms-2': ['jack', 'kim'] });
  });

  const people = (bridge: string) =>
    control.sim.inspectCall(m.call(bridge)).legs.filter((l) => l.subType !== 'distributionLink' && l.kind !== 'distributionLink');

  test('mute everyone reaches both bridges (PUT /calls/<id>/participants/* on each instance)', async () => {
    const done = await applied(await control.api('PATCH', `/calls/${m.call('cms-1')}/participants`, { rxAudioMute: true }));
    assert.deepEqual(done.steps.map((s) => s.node).sort(), ['cms-1', 'cms-2']);
    for (const bridge of ['cms-1', 'cms-2']) {
      assert.equal(writes(bridge, 'PUT', `/calls/${m.call(bridge)}/participants/`).length, 1, bridge);
      for (const l of people(bridge)) assert.equal(l.rxAudioMute, true, `${l.remoteParty} on ${bridge}`);
    }
    await applied(await control.api('PATCH', `/calls/${m.call('cms-2')}/participants`, { rxAudioMute: false }));
    for (const bridge of ['cms-1', 'cms-2']) for (const l of people(bridge)) assert.equal(l.rxAudioMute, false);
  });

  test('presenter mode on: everyone else on both bridges speakerOnly and audio-muted; off restores each as it was', async () => {
    const hana = m.legs.hana;
    const kim = m.legs.kim;
    assert.ok(hana && kim);
    // Set up differences presenter mode must put back: kim was already muted with her own layout.
    await applied(
      await control.api('PATCH', `/calls/${kim.callId}/participants/${kim.callLegId}`, {
        rxAudioMute: true,
        chosenLayout: 'allEqualQuarters',
      }),
    );
    const before = new Map([...people('cms-1'), ...people('cms-2')].map((l) => [l.id, { layout: l.chosenLayout, mute: l.rxAudioMute }]));

    const on = await applied(await control.api('POST', `/calls/${hana.callId}/presenter`, { participant: hana.callLegId }));
    assert.deepEqual(on.steps.map((s) => s.node).sort(), ['cms-1', 'cms-2']);
    for (const l of [...people('cms-1'), ...people('cms-2')]) {
      if (l.id === hana.callLegId) {
        assert.equal(l.rxAudioMute, false, 'the presenter is heard');
        assert.notEqual(l.chosenLayout, 'speakerOnly');
      } else {
        assert.equal(l.chosenLayout, 'speakerOnly', l.remoteParty);
        assert.equal(l.rxAudioMute, true, l.remoteParty);
      }
    }
    const importance = control.sim.inspectCall(hana.callId).participants.find((p) => p.uri.includes('hana'))?.importance;
    assert.ok(importance !== null && importance !== undefined && importance > 0, 'the presenter gets importance');
    const twice = await control.api('POST', `/calls/${hana.callId}/presenter`, { participant: hana.callLegId });
    assert.equal(twice.status, 409);

    await applied(await control.api('DELETE', `/calls/${m.call('cms-2')}/presenter`));
    for (const l of [...people('cms-1'), ...people('cms-2')]) {
      assert.deepEqual({ layout: l.chosenLayout, mute: l.rxAudioMute }, before.get(l.id), `${l.remoteParty} restored`);
    }
    const presenter = control.sim.inspectCall(hana.callId).participants.find((p) => p.uri.includes('hana'));
    assert.equal(presenter?.importance ?? null, null, "the presenter's importance restored");
  });

  test('end the meeting: every instance ends', async () => {
    const calls = { 'cms-1': m.call('cms-1'), 'cms-2': m.call('cms-2') };
    const done = await applied(await control.api('DELETE', `/calls/${calls['cms-1']}`));
    assert.equal(done.steps.length, 2);
    for (const bridge of ['cms-1', 'cms-2'] as const) {
      assert.equal(writes(bridge, 'DELETE', `/calls/${calls[bridge]}`).length, 1);
      assert.throws(() => control.sim.inspectCall(calls[bridge]));
    }
    const after = await eventually(
      async () => {
        const res = await control.api('PATCH', `/calls/${calls['cms-1']}/participants`, { rxAudioMute: true });
        return res.status === 409 && res;
      },
      { what: 'the callEnd to reach the records API' },
    );
    assert.match(after.body.detail, /has ended/);
  });
});

describe('refusals', () => {
  test('a viewer gets 403 and nothing reaches CMS', async () => {
    const m = await meeting('Viewer', { 'cms-1': ['liam'], 'cms-2': [] });
    const before = nonMessageWrites('cms-1');
    const res = await control.api('DELETE', `/calls/${m.call('cms-1')}`, undefined, { token: VIEWER_TOKEN });
    assert.equal(res.status, 403);
    assert.equal(nonMessageWrites('cms-1'), before);
  });

  test('bad input answers 4xx naming the fault and nothing reaches CMS', async () => {
    const m = await meeting('Bad input', { 'cms-1': ['mia'], 'cms-2': [] });
    const mia = m.legs.mia;
    assert.ok(mia);
    const before = nonMessageWrites();
    const bad: [string, string, unknown, number][] = [
      ['PATCH', `/calls/${mia.callId}/participants/${mia.callLegId}`, { chosenLayout: 'mosaic' }, 400],
      ['POST', `/calls/${mia.callId}/participants`, { remoteParty: '   ' }, 400],
      ['POST', `/calls/${mia.callId}/participants`, { remoteParty: '' }, 400],
      ['DELETE', `/calls/${mia.callId}/participants/00000000-0000-4000-8000-00000000dead`, undefined, 404],
      ['POST', '/lobby/admit', { participants: [mia.callLegId] }, 409],
    ];
    for (const [method, path, body, status] of bad) {
      const res = await control.api(method, path, body);
      assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.ok(res.body.detail.length > 10);
    }
    assert.equal(nonMessageWrites(), before);
  });
});
