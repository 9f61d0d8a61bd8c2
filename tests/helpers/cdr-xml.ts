/** Builds CMS-shaped CDR POST bodies for tests. */
import { randomUUID } from 'node:crypto';

export interface TestRecord {
  type: string;
  correlatorIndex: number;
  recordIndex?: number;
  time?: string;
  /** The record's child element, e.g. `<callLeg id="...">...</callLeg>`. */
  body: string;
  extraAttributes?: string;
}

export function recordsXml(options: { session: string; callBridge?: string; records: TestRecord[]; declaration?: boolean }): string {
  const bridge = options.callBridge ? ` callBridge="${options.callBridge}"` : '';
  const records = options.records
    .map(
      (r) =>
        `  <record type="${r.type}" time="${r.time ?? '2026-11-21T09:00:00Z'}" recordIndex="${r.recordIndex ?? r.correlatorIndex + 1}" correlatorIndex="${r.correlatorIndex}"${r.extraAttributes ?? ''}>\n    ${r.body}\n  </record>`,
    )
    .join('\n');
  return `${options.declaration === false ? '' : '<?xml version="1.0"?>\n'}<records session="${options.session}"${bridge}>\n${records}\n</records>\n`;
}

/**
 * One leg's whole life, as its own records: callLegStart, into an IVR, connected into the call in the lobby
 * (deactivated) with a new display name, admitted, callLegEnd with quality data. correlatorIndex start, +2, +4, +6, +9.
 */
export function legLifecycleRecords(ids: { leg: string; call: string }, start = 0): TestRecord[] {
  const { leg, call } = ids;
  return [
    {
      type: 'callLegStart',
      correlatorIndex: start,
      time: '2026-11-21T09:00:00Z',
      body: `<callLeg id="${leg}"><displayName>Guest</displayName><remoteParty>0701234567@corp.example.com</remoteParty><type>sip</type><direction>incoming</direction></callLeg>`,
    },
    { type: 'callLegUpdate', correlatorIndex: start + 2, time: '2026-11-21T09:00:05Z', body: `<callLeg id="${leg}"><ivr/></callLeg>` },
    {
      type: 'callLegUpdate',
      correlatorIndex: start + 4,
      time: '2026-11-21T09:00:10Z',
      body: `<callLeg id="${leg}"><state>connected</state><call>${call}</call><deactivated>true</deactivated><displayName>Alice</displayName></callLeg>`,
    },
    {
      type: 'callLegUpdate',
      correlatorIndex: start + 6,
      time: '2026-11-21T09:01:00Z',
      body: `<callLeg id="${leg}"><state>connected</state><deactivated>false</deactivated></callLeg>`,
    },
    {
      type: 'callLegEnd',
      correlatorIndex: start + 9,
      time: '2026-11-21T09:30:00Z',
      body: `<callLeg id="${leg}"><reason>remoteTeardown</reason><durationSeconds>1790</durationSeconds><encryptedMedia>true</encryptedMedia><alarm type="packetLoss" durationPercentage="0.1"/></callLeg>`,
    },
  ];
}

/** A call with one SIP leg joining and leaving: callLegStart (before callStart, as in Cisco's example), callStart, callLegUpdate, callLegEnd, callEnd. */
export function simpleCallRecords(start = 0, ids = { call: randomUUID(), leg: randomUUID(), correlator: randomUUID() }): TestRecord[] {
  return [
    {
      type: 'callLegStart',
      correlatorIndex: start,
      body: `<callLeg id="${ids.leg}"><displayName>Alice</displayName><remoteParty>alice@corp.example.com</remoteParty><localAddress>meet@cms.example.com</localAddress><type>sip</type><direction>incoming</direction><groupId>${ids.leg}</groupId></callLeg>`,
    },
    {
      type: 'callStart',
      correlatorIndex: start + 1,
      body: `<call id="${ids.call}"><name>Team</name><callType>coSpace</callType><coSpace>${randomUUID()}</coSpace><callCorrelator>${ids.correlator}</callCorrelator></call>`,
    },
    {
      type: 'callLegUpdate',
      correlatorIndex: start + 2,
      body: `<callLeg id="${ids.leg}"><state>connected</state><call>${ids.call}</call><groupId>${ids.leg}</groupId></callLeg>`,
    },
    {
      type: 'callLegEnd',
      correlatorIndex: start + 3,
      time: '2026-11-21T09:30:00Z',
      body: `<callLeg id="${ids.leg}"><reason>remoteTeardown</reason><remoteTeardown>true</remoteTeardown><durationSeconds>1800</durationSeconds><activatedDuration>1800</activatedDuration><encryptedMedia>true</encryptedMedia><alarm type="packetLoss" durationPercentage="0.1"/><alarm type="excessiveJitter" durationPercentage="0.0"/></callLeg>`,
    },
    {
      type: 'callEnd',
      correlatorIndex: start + 4,
      time: '2026-11-21T09:30:01Z',
      body: `<call id="${ids.call}"><callLegsCompleted>1</callLegsCompleted><callLegsMaxActive>1</callLegsMaxActive><durationSeconds>1801</durationSeconds></call>`,
    },
  ];
}

/** Records of one participant: join (callLegStart), connect into the call (callLegUpdate), optionally in the lobby. */
export function participantJoin(
  correlatorIndex: number,
  options: { leg?: string; call: string; remoteParty: string; type?: 'sip' | 'acano'; subType?: string; guest?: boolean; lobby?: boolean },
): { leg: string; records: TestRecord[] } {
  const leg = options.leg ?? randomUUID();
  const extra = `${options.subType ? `<subType>${options.subType}</subType>` : ''}${options.guest ? '<guestConnection>true</guestConnection>' : ''}`;
  return {
    leg,
    records: [
      {
        type: 'callLegStart',
        correlatorIndex,
        body: `<callLeg id="${leg}"><remoteParty>${options.remoteParty}</remoteParty><type>${options.type ?? 'sip'}</type>${extra}<direction>incoming</direction></callLeg>`,
      },
      {
        type: 'callLegUpdate',
        correlatorIndex: correlatorIndex + 1,
        body: `<callLeg id="${leg}"><state>connected</state><call>${options.call}</call>${options.lobby ? '<deactivated>true</deactivated>' : ''}</callLeg>`,
      },
    ],
  };
}

export function participantAdmitted(correlatorIndex: number, leg: string, call: string): TestRecord {
  return {
    type: 'callLegUpdate',
    correlatorIndex,
    body: `<callLeg id="${leg}"><state>connected</state><call>${call}</call><deactivated>false</deactivated></callLeg>`,
  };
}

export function participantLeaves(correlatorIndex: number, leg: string): TestRecord {
  return {
    type: 'callLegEnd',
    correlatorIndex,
    body: `<callLeg id="${leg}"><reason>remoteTeardown</reason><durationSeconds>60</durationSeconds></callLeg>`,
  };
}

export function callStart(correlatorIndex: number, call: string, callCorrelator: string, name = 'Meeting'): TestRecord {
  return {
    type: 'callStart',
    correlatorIndex,
    body: `<call id="${call}"><name>${name}</name><callType>coSpace</callType><callCorrelator>${callCorrelator}</callCorrelator></call>`,
  };
}

/**
 * `total` leg updates of one Call Bridge session, `correlatorIndex` 0…total-1, in batches of `perBatch`; record i
 * updates leg i mod `legs` of call i mod `calls`, so legs and calls recur across batches.
 */
export function legUpdateBatches(session: string, total: number, perBatch: number, shape: { legs: number; calls: number }): TestRecord[][] {
  const batches: TestRecord[][] = [];
  for (let start = 0; start < total; start += perBatch) {
    const records: TestRecord[] = [];
    for (let i = start; i < Math.min(start + perBatch, total); i++) {
      records.push({
        type: 'callLegUpdate',
        correlatorIndex: i,
        body: `<callLeg id="leg-${session}-${i % shape.legs}"><state>connected</state><call>call-${session}-${i % shape.calls}</call></callLeg>`,
      });
    }
    batches.push(records);
  }
  return batches;
}
