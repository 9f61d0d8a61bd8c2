import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAddress, sipHost } from '@cms/policy';

describe('sipHost', () => {
  test('takes the host of a plain user@host remoteParty', () => {
    assert.equal(sipHost('sipclient1@example.com'), 'example.com');
  });

  test('strips the sip: scheme', () => {
    assert.equal(sipHost('sip:alice@corp.com'), 'corp.com');
  });

  test('strips the sips: scheme whatever its case', () => {
    assert.equal(sipHost('SIPS:alice@corp.com'), 'corp.com');
  });

  test('strips a quoted display name and angle brackets', () => {
    assert.equal(sipHost('"Alice" <sip:alice@corp.com>'), 'corp.com');
  });

  test('ignores <, > and @ inside a quoted display name', () => {
    assert.equal(sipHost('"Eve <eve@corp.com> \\"x\\"" <sip:eve@attacker.net>'), 'attacker.net');
  });

  test('strips an unquoted display name before angle brackets', () => {
    assert.equal(sipHost('Alice Smith <sip:alice@corp.com>'), 'corp.com');
  });

  test('tolerates a missing closing angle bracket', () => {
    assert.equal(sipHost('Alice <sip:alice@corp.com'), 'corp.com');
  });

  test('takes the part after the last @ as the host', () => {
    assert.equal(sipHost('sip:corp.com@attacker.net'), 'attacker.net');
  });

  test('strips the port', () => {
    assert.equal(sipHost('sip:alice@corp.com:5061'), 'corp.com');
  });

  test('strips URI parameters', () => {
    assert.equal(sipHost('sip:alice@corp.com;transport=tls'), 'corp.com');
  });

  test('strips headers', () => {
    assert.equal(sipHost('sip:alice@corp.com?subject=hi'), 'corp.com');
  });

  test('strips port, parameters and headers together inside angle brackets', () => {
    assert.equal(sipHost('"A" <sips:alice@corp.com:5061;transport=tls;lr?x=y>'), 'corp.com');
  });

  test('keeps user parameters with ; and ? out of the host', () => {
    assert.equal(sipHost('sip:+15551234;phone-context=x?y@corp.com'), 'corp.com');
  });

  test('lower-cases the host', () => {
    assert.equal(sipHost('sip:Alice@VIDEO.Corp.COM'), 'video.corp.com');
  });

  test('drops the trailing dot of a fully qualified name', () => {
    assert.equal(sipHost('sip:alice@corp.com.'), 'corp.com');
  });

  test('drops the trailing dot before a port', () => {
    assert.equal(sipHost('sip:alice@corp.com.:5060'), 'corp.com');
  });

  test('accepts a bare host with no user part', () => {
    assert.equal(sipHost('video.corp.com'), 'video.corp.com');
  });

  test('reads an IPv4 host and strips its port', () => {
    assert.equal(sipHost('sip:alice@192.0.2.10:5060'), '192.0.2.10');
  });

  test('reads an IPv6 host in brackets and strips its port', () => {
    assert.equal(sipHost('sip:alice@[2001:DB8::1]:5061;transport=tls'), '2001:db8::1');
  });

  test('reads a bare IPv6 literal without brackets', () => {
    assert.equal(sipHost('2001:db8::1'), '2001:db8::1');
  });

  test('leaves punycode names as they are', () => {
    assert.equal(sipHost('sip:alice@xn--crp-xla.com'), 'xn--crp-xla.com');
  });

  test('rejects non-ASCII host names instead of mapping them', () => {
    assert.equal(sipHost('sip:alice@cοrp.com'), null);
  });

  test('returns null for an empty address', () => {
    assert.equal(sipHost(''), null);
  });

  test('returns null for a missing address', () => {
    assert.equal(sipHost(null), null);
    assert.equal(sipHost(undefined), null);
  });

  test('returns null for an address with nothing after the @', () => {
    assert.equal(sipHost('sip:alice@'), null);
  });

  test('returns null for a non-numeric port', () => {
    assert.equal(sipHost('sip:alice@corp.com:abc'), null);
  });

  test('returns null for a malformed IP-like host', () => {
    assert.equal(sipHost('sip:alice@10.1.2'), null);
  });

  test('returns null for an unterminated IPv6 bracket', () => {
    assert.equal(sipHost('sip:alice@[2001:db8::1'), null);
  });
});

describe('parseAddress', () => {
  test('reads a tel: URI as a phone number', () => {
    assert.deepEqual(parseAddress('tel:+1-555-123-4567;phone-context=corp.com'), { kind: 'phoneNumber' });
  });

  test('reads a digits-only address as a phone number', () => {
    assert.deepEqual(parseAddress('0701234567'), { kind: 'phoneNumber' });
  });

  test('reads a sip: URI with only a number as a phone number', () => {
    assert.deepEqual(parseAddress('sip:+15551234;user=phone'), { kind: 'phoneNumber' });
  });

  test('reads a formatted number as a phone number', () => {
    assert.deepEqual(parseAddress('+1 (555) 123-4567'), { kind: 'phoneNumber' });
  });

  test('reads a number at a domain as that domain', () => {
    assert.deepEqual(parseAddress('sip:0701234567@corp.com'), { kind: 'domain', host: 'corp.com' });
  });

  test('reads whitespace only as empty', () => {
    assert.deepEqual(parseAddress('   '), { kind: 'empty' });
  });

  test('reads empty angle brackets as empty', () => {
    assert.deepEqual(parseAddress('"Alice" <>'), { kind: 'empty' });
  });

  test('tells IPv4 from IPv6 hosts', () => {
    assert.deepEqual(parseAddress('sip:a@192.0.2.1'), { kind: 'ip', host: '192.0.2.1', family: 4 });
    assert.deepEqual(parseAddress('sip:a@[2001:db8::1]'), { kind: 'ip', host: '2001:db8::1', family: 6 });
  });

  test('rejects an IPv4 literal in brackets', () => {
    assert.deepEqual(parseAddress('sip:a@[192.0.2.1]'), { kind: 'invalid' });
  });
});
