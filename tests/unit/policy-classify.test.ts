import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '@cms/config';
import type { callLegs } from '@cms/db';
import { classifyLeg, compilePolicy, type LegFacts } from '@cms/policy';

const lists = { secureDomains: ['corp.com', '10.0.0.0/8', '2001:db8::/32'], internalDomains: ['partner.org', '192.168.0.0/16'] };
const guestMode = compilePolicy(configSchema.shape.policy.parse(lists));
const byDomain = compilePolicy(configSchema.shape.policy.parse({ ...lists, appUsers: 'byDomain' }));

function sip(remoteParty: string | null, facts: Partial<LegFacts> = {}): LegFacts {
  return { id: 'leg-1', type: 'sip', state: 'connected', remoteParty, ...facts };
}

describe('classifyLeg: SIP legs by domain', () => {
  test('puts a secure domain at level 1 and names the entry', () => {
    assert.deepEqual(classifyLeg(sip('sip:alice@video.corp.com'), guestMode), {
      level: 1,
      rule: 'secureDomain',
      matched: 'corp.com',
      host: 'video.corp.com',
      address: 'sip:alice@video.corp.com',
    });
  });

  test('puts an internal domain at level 2 and names the entry', () => {
    assert.deepEqual(classifyLeg(sip('bob@partner.org'), guestMode), {
      level: 2,
      rule: 'internalDomain',
      matched: 'partner.org',
      host: 'partner.org',
      address: 'bob@partner.org',
    });
  });

  test('puts an unlisted domain at level 3', () => {
    assert.deepEqual(classifyLeg(sip('eve@attacker.net'), guestMode), {
      level: 3,
      rule: 'unlistedDomain',
      host: 'attacker.net',
      address: 'eve@attacker.net',
    });
  });

  test('puts a look-alike ending in the secure domain at level 3', () => {
    assert.equal(classifyLeg(sip('eve@evilcorp.com'), guestMode).level, 3);
  });

  test('puts the secure domain followed by another domain at level 3', () => {
    assert.equal(classifyLeg(sip('eve@corp.com.attacker.net'), guestMode).level, 3);
  });

  test('puts a secure domain written with a display name, port, parameters and upper case at level 1', () => {
    assert.equal(classifyLeg(sip('"Alice" <SIPS:Alice@Video.CORP.com.:5061;transport=tls?x=y>'), guestMode).level, 1);
  });

  test('puts an IPv4 host inside a secure network at level 1', () => {
    assert.deepEqual(classifyLeg(sip('sip:alice@10.1.2.3:5060'), guestMode), {
      level: 1,
      rule: 'secureDomain',
      matched: '10.0.0.0/8',
      host: '10.1.2.3',
      address: 'sip:alice@10.1.2.3:5060',
    });
  });

  test('puts an IPv6 host in brackets inside a secure network at level 1', () => {
    assert.equal(classifyLeg(sip('sip:alice@[2001:db8::10]:5061'), guestMode).level, 1);
  });

  test('puts an IPv4 host inside an internal network at level 2', () => {
    assert.equal(classifyLeg(sip('192.168.4.4'), guestMode).level, 2);
  });

  test('puts an IP host outside every listed network at level 3', () => {
    assert.deepEqual(classifyLeg(sip('sip:alice@203.0.113.9'), guestMode), {
      level: 3,
      rule: 'ipNotListed',
      host: '203.0.113.9',
      address: 'sip:alice@203.0.113.9',
    });
  });

  test('puts a tel: URI at level 3', () => {
    assert.deepEqual(classifyLeg(sip('tel:+15551234'), guestMode), { level: 3, rule: 'phoneNumber', address: 'tel:+15551234' });
  });

  test('puts a bare number at level 3', () => {
    assert.deepEqual(classifyLeg(sip('0701234567'), guestMode), { level: 3, rule: 'phoneNumber', address: '0701234567' });
  });

  test('puts a leg without any address at level 3', () => {
    assert.deepEqual(classifyLeg(sip(null), guestMode), { level: 3, rule: 'noAddress' });
  });

  test('puts a leg with an empty address at level 3', () => {
    assert.deepEqual(classifyLeg(sip('', { remoteAddress: '  ' }), guestMode), { level: 3, rule: 'noAddress' });
  });

  test('puts a leg with an unreadable address at level 3', () => {
    assert.deepEqual(classifyLeg(sip('alice@corp.com:abc'), guestMode), {
      level: 3,
      rule: 'invalidAddress',
      address: 'alice@corp.com:abc',
    });
  });

  test('classifies Lync and Avaya SIP legs by domain too', () => {
    assert.equal(classifyLeg(sip('alice@corp.com', { subType: 'lync' }), guestMode).level, 1);
    assert.equal(classifyLeg(sip('alice@corp.com', { subType: 'avaya' }), guestMode).level, 1);
  });
});

describe('classifyLeg: remoteAddress and remoteParty', () => {
  test('prefers remoteAddress when a later update gives it', () => {
    const leg = sip('alice@corp.com', { remoteAddress: 'sip:alice@attacker.net' });
    assert.deepEqual(classifyLeg(leg, guestMode), {
      level: 3,
      rule: 'unlistedDomain',
      host: 'attacker.net',
      address: 'sip:alice@attacker.net',
    });
  });

  test('uses remoteAddress alone when remoteParty is missing', () => {
    assert.equal(classifyLeg(sip(null, { remoteAddress: 'bob@partner.org' }), guestMode).level, 2);
  });

  test('falls back to remoteParty when remoteAddress is empty', () => {
    assert.equal(classifyLeg(sip('alice@corp.com', { remoteAddress: '' }), guestMode).level, 1);
  });

  test('falls back to remoteParty when remoteAddress is unreadable', () => {
    assert.equal(classifyLeg(sip('alice@corp.com', { remoteAddress: 'sip:alice@' }), guestMode).level, 1);
  });
});

describe('classifyLeg: secure and internal lists overlapping', () => {
  test('lets a more specific internal entry win over a secure parent', () => {
    const policy = compilePolicy(configSchema.shape.policy.parse({ secureDomains: ['corp.com'], internalDomains: ['guests.corp.com'] }));
    assert.deepEqual(classifyLeg(sip('x@wifi.guests.corp.com'), policy), {
      level: 2,
      rule: 'internalDomain',
      matched: 'guests.corp.com',
      host: 'wifi.guests.corp.com',
      address: 'x@wifi.guests.corp.com',
    });
  });

  test('lets a more specific secure entry win over an internal parent', () => {
    const policy = compilePolicy(configSchema.shape.policy.parse({ secureDomains: ['secure.corp.com'], internalDomains: ['corp.com'] }));
    assert.equal(classifyLeg(sip('x@secure.corp.com'), policy).level, 1);
    assert.equal(classifyLeg(sip('x@www.corp.com'), policy).level, 2);
  });

  test('puts a domain listed in both at the worse level, internal', () => {
    const policy = compilePolicy(configSchema.shape.policy.parse({ secureDomains: ['corp.com'], internalDomains: ['corp.com'] }));
    assert.equal(classifyLeg(sip('x@corp.com'), policy).level, 2);
  });

  test('lets the longer network prefix win', () => {
    const policy = compilePolicy(configSchema.shape.policy.parse({ secureDomains: ['10.1.0.0/16'], internalDomains: ['10.0.0.0/8'] }));
    assert.equal(classifyLeg(sip('10.1.2.3'), policy).level, 1);
    assert.equal(classifyLeg(sip('10.2.2.3'), policy).level, 2);
  });
});

describe('classifyLeg: guests and app users', () => {
  test('puts a WebRTC guest at level 3 even from a secure domain', () => {
    const guest = { id: 'g', type: 'acano', subType: 'webApp', guestConnection: true, remoteParty: 'guest@corp.com' };
    assert.deepEqual(classifyLeg(guest, guestMode), { level: 3, rule: 'guest' });
  });

  test('keeps a guest at level 3 with appUsers byDomain', () => {
    const guest = { id: 'g', type: 'acano', subType: 'webApp', guestConnection: true, remoteParty: 'guest@corp.com' };
    assert.deepEqual(classifyLeg(guest, byDomain), { level: 3, rule: 'guest' });
  });

  test('puts a guest flagged on a SIP leg at level 3', () => {
    assert.deepEqual(classifyLeg(sip('alice@corp.com', { guestConnection: true }), guestMode), { level: 3, rule: 'guest' });
  });

  test('puts a signed-in app user (type acano) at level 3 by default', () => {
    const app = { id: 'a', type: 'acano', guestConnection: false, remoteParty: 'alice@corp.com' };
    assert.deepEqual(classifyLeg(app, guestMode), { level: 3, rule: 'app' });
  });

  test('puts a signed-in web app user (subType webApp) at level 3 by default', () => {
    const app = { id: 'a', type: 'sip', subType: 'webApp', remoteParty: 'alice@corp.com' };
    assert.deepEqual(classifyLeg(app, guestMode), { level: 3, rule: 'app' });
  });

  test('classifies a signed-in app user by domain with appUsers byDomain', () => {
    const app = { id: 'a', type: 'acano', guestConnection: false, remoteParty: 'alice@corp.com' };
    assert.deepEqual(classifyLeg(app, byDomain), {
      level: 1,
      rule: 'secureDomain',
      matched: 'corp.com',
      host: 'corp.com',
      address: 'alice@corp.com',
    });
  });

  test('puts a signed-in web app user from an unlisted domain at level 3 with appUsers byDomain', () => {
    const app = { id: 'a', type: 'acano', subType: 'webApp', remoteParty: 'alice@elsewhere.com' };
    assert.equal(classifyLeg(app, byDomain).rule, 'unlistedDomain');
  });
});

// Compile-time proof that a call_legs row is LegFacts as it is (npm run typecheck fails otherwise).
type CallLegRow = typeof callLegs.$inferSelect;
const rowAsFacts = (row: CallLegRow): LegFacts => row;

describe('classifyLeg: database rows', () => {
  test('classifies a call_legs row passed straight in', () => {
    // Cast: other columns may be added to the table without this test caring.
    const row = {
      id: 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1',
      callId: '46d49cb4-8171-4abc-97f5-b88035b1da0a',
      node: 'cms-1',
      callBridge: null,
      session: 'a865433a-4926-4549-a701-9bb5b93c75e6',
      seq: 2,
      displayName: null,
      remoteParty: 'sipclient1@example.com',
      remoteAddress: null,
      localAddress: 'access1@127.0.0.1',
      type: 'sip',
      subType: null,
      lyncSubType: null,
      direction: 'incoming',
      guestConnection: null,
      ownerId: null,
      sipCallId: 'b8a81da5-c24c-43db-ba58-742f587faec8',
      groupId: '18da80f3-8a71-4255-aa90-e1677b99b588',
      cdrTag: null,
      state: 'connected',
      inIvr: null,
      deactivated: null,
      startedAt: '2015-07-23T07:32:55Z',
      connectedAt: '2015-07-23T07:32:55Z',
      endedAt: null,
      endReason: null,
      durationSeconds: null,
      activatedDuration: null,
      encryptedMedia: null,
      quality: null,
      updatedAt: '2015-07-23T07:32:55Z',
    } as CallLegRow;
    const policy = compilePolicy(configSchema.shape.policy.parse({ internalDomains: ['example.com'] }));
    assert.equal(classifyLeg(rowAsFacts(row), policy).level, 2);
  });
});
