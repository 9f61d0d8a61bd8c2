/**
 * The live view end to end through the real processes: two simulated Call Bridges, our four services started as
 * processes, the actuator following both bridges over the CMS events feed. A join, a leave, a mute, a layout change
 * and a lobby wait on the bridge each show up in GET /api/v1/calls/<id> and GET /api/v1/meetings/<key>.
 * (How fast is measured by the call-control benchmark; here only that each change arrives.)
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { MeetingHandle, Simulator } from '@cms/cms-sim';
import { eventually } from '../helpers/infra.ts';
import { type Stack, startStack } from '../helpers/stack.ts';
import { bridgesWithCredentials, cmsNodesOf, sendCdrsToStack, startStackSimulator, writeConfigFile } from '../helpers/stack-setup.ts';

const BRIDGES = ['live-1', 'live-2'] as const;

interface Live {
  participantId: string | null;
  state: string | null;
  connected: boolean | null;
  deactivated: boolean | null;
  activator: boolean | null;
  audioMuted: boolean | null;
  videoMuted: boolean | null;
  layout: string | null;
  source: string;
  updatedAt: string;
}
interface Leg {
  id: string;
  groupId: string | null;
  /** The CDRs' lobby flag. */
  deactivated: boolean | null;
  endedAt: string | null;
  live: Live | null;
}

let sim: Simulator;
let stack: Stack;

before(async () => {
  sim = await startStackSimulator({ bridges: bridgesWithCredentials(BRIDGES, 'live-secret'), seed: 20261207 });
  const { configFile } = writeConfigFile('live-view-e2e-', {
    cms: { nodes: cmsNodesOf(sim) },
    policy: { internalDomains: ['corp.example'] },
  });
  stack = await startStack({
    services: ['cdr-ingest', 'policy-worker', 'cms-actuator', 'records-api'],
    env: { CONFIG_FILE: configFile },
  });
  sendCdrsToStack(sim, stack);
  await eventually(
    async () => {
      const body = (await (await fetch(`${stack.url('cms-actuator')}/readyz`)).json()) as { cmsNodes?: Record<string, { mode: string }> };
      return BRIDGES.every((b) => body.cmsNodes?.[b]?.mode === 'events');
    },
    { what: 'both bridges followed over the events feed', timeoutMs: 30_000 },
  );
});

async function api<T>(route: string): Promise<T> {
  const res = await fetch(`${stack.url('records-api')}/api/v1${route}`, { headers: { authorization: `Bearer ${stack.apiToken}` } });
  assert.equal(res.status, 200, `${route}: ${await res.clone().text()}`);
  return (await res.json()) as T;
}

const callLegs = async (callId: string) => (await api<{ legs: Leg[] }>(`/calls/${callId}`)).legs;
const meetingLegs = async (key: string) => (await api<{ participants: Leg[] }>(`/meetings/${key}`)).participants;

/** The participant's leg in a list, the one still in the call if there are several. */
function legOf(legs: Leg[], participantId: string): Leg | undefined {
  const mine = legs.filter((l) => l.groupId === participantId || l.live?.participantId === participantId);
  return mine.find((l) => l.endedAt === null) ?? mine[0];
}

/** `check` holds for the participant's leg in both GET /calls/<callId> and GET /meetings/<key>. */
async function visible(
  meeting: MeetingHandle,
  callId: string,
  participantId: string,
  what: string,
  check: (leg: Leg | undefined) => boolean,
) {
  let seen: unknown;
  try {
    await eventually(
      async () => {
        const inCall = legOf(await callLegs(callId), participantId);
        const inMeeting = legOf(await meetingLegs(meeting.callCorrelator), participantId);
        seen = { inCall, inMeeting };
        return check(inCall) && check(inMeeting);
      },
      { what, timeoutMs: 20_000 },
    );
  } catch (err) {
    assert.fail(`${(err as Error).message}; last seen ${JSON.stringify(seen)}`);
  }
}

describe('live view', () => {
  test('a join, a mute, a layout change, a lobby wait and a leave on two bridges show in /calls/<id> and /meetings/<key>', async () => {
    const meeting = sim.startCall({ name: 'Live meeting', bridges: [...BRIDGES] });
    const [one, two] = BRIDGES;
    const call1 = meeting.callId(one);
    const call2 = meeting.callId(two);

    const alice = sim.join({ meeting, bridge: one, remoteParty: 'alice@corp.example', displayName: 'Alice' });
    await visible(meeting, call1, alice.participantId, 'alice joined', (l) => l?.live?.connected === true && l.live.activator === true);
    const bob = sim.join({ meeting, bridge: two, remoteParty: 'bob@corp.example', displayName: 'Bob' });
    await visible(meeting, call2, bob.participantId, 'bob joined on the second bridge', (l) => l?.live?.connected === true);

    sim.updateCallLeg(alice.callLegId, { rxAudioMute: true });
    await visible(meeting, call1, alice.participantId, 'alice muted', (l) => l?.live?.audioMuted === true);
    sim.updateCallLeg(bob.callLegId, { chosenLayout: 'speakerOnly' });
    await visible(meeting, call2, bob.participantId, 'bob on speakerOnly', (l) => l?.live?.layout === 'speakerOnly');

    sim.updateCall(call1, { locked: true });
    const guest = sim.join({ meeting, bridge: one, kind: 'guest', displayName: 'Guest' });
    assert.equal(guest.deactivated, true, 'a guest of a locked meeting waits in the lobby');
    await visible(
      meeting,
      call1,
      guest.participantId,
      'the guest in the lobby',
      // The lobby flag is the CDRs' (the roster has no lobby element); the live view says it needs activation.
      (l) => l?.deactivated === true && l.live?.activator === false,
    );

    sim.leave(bob.callLegId);
    await visible(
      meeting,
      call2,
      bob.participantId,
      'bob left',
      (l) => l !== undefined && l.endedAt !== null && (l.live === null || (l.live.state === 'left' && l.live.connected === false)),
    );
    // The others are untouched by it.
    await visible(meeting, call1, alice.participantId, 'alice still in, still muted', (l) => l?.live?.audioMuted === true);
    sim.endCall(meeting);
  });
});
