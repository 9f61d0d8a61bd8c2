import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, configSchema } from '@cms/config';
import { compileDomainList, compilePolicy, matchesDomainList } from '@cms/policy';

function policyConfig(secureDomains: string[], internalDomains: string[] = []) {
  return configSchema.shape.policy.parse({ secureDomains, internalDomains });
}

describe('matchesDomainList: domains', () => {
  const list = compileDomainList(['corp.com']);

  test('matches the domain itself', () => {
    assert.equal(matchesDomainList('corp.com', list), 'corp.com');
  });

  test('matches a subdomain at a label boundary', () => {
    assert.equal(matchesDomainList('video.corp.com', list), 'corp.com');
  });

  test('matches a deeper subdomain', () => {
    assert.equal(matchesDomainList('a.b.video.corp.com', list), 'corp.com');
  });

  test('does not match a name that merely ends with the domain', () => {
    assert.equal(matchesDomainList('evilcorp.com', list), null);
  });

  test('does not match the domain followed by another domain', () => {
    assert.equal(matchesDomainList('corp.com.attacker.net', list), null);
  });

  test('does not match a shorter look-alike', () => {
    assert.equal(matchesDomainList('corp.co', list), null);
  });

  test('does not match the parent of a listed domain', () => {
    assert.equal(matchesDomainList('com', list), null);
  });

  test('does not match a punycode look-alike', () => {
    assert.equal(matchesDomainList('xn--crp-xla.com', list), null);
  });

  test('matches whatever the case of host and entry', () => {
    assert.equal(matchesDomainList('Video.CORP.com', compileDomainList(['Corp.Com'])), 'Corp.Com');
  });

  test('matches with a trailing dot on the host', () => {
    assert.equal(matchesDomainList('video.corp.com.', list), 'corp.com');
  });

  test('matches with a trailing dot on the entry', () => {
    assert.equal(matchesDomainList('video.corp.com', compileDomainList(['corp.com.'])), 'corp.com.');
  });

  test('matches a punycode entry only by its exact punycode name', () => {
    const idn = compileDomainList(['xn--bcher-kva.de']);
    assert.equal(matchesDomainList('video.xn--bcher-kva.de', idn), 'xn--bcher-kva.de');
    assert.equal(matchesDomainList('bcher.de', idn), null);
  });

  test('returns the most specific of several matching entries', () => {
    assert.equal(matchesDomainList('video.eu.corp.com', compileDomainList(['corp.com', 'eu.corp.com'])), 'eu.corp.com');
  });

  test('reduces a whole SIP address to its host first', () => {
    assert.equal(matchesDomainList('"Alice" <sip:alice@video.corp.com:5061>', list), 'corp.com');
  });

  test('accepts an uncompiled list', () => {
    assert.equal(matchesDomainList('video.corp.com', ['other.org', 'corp.com']), 'corp.com');
  });
});

describe('matchesDomainList: IP networks', () => {
  test('matches an IPv4 address inside a CIDR entry', () => {
    assert.equal(matchesDomainList('10.20.30.40', compileDomainList(['10.0.0.0/8'])), '10.0.0.0/8');
  });

  test('does not match an IPv4 address outside a CIDR entry', () => {
    assert.equal(matchesDomainList('11.0.0.1', compileDomainList(['10.0.0.0/8'])), null);
  });

  test('matches an odd-sized IPv4 network at its edges only', () => {
    const list = compileDomainList(['192.0.2.64/26']);
    assert.equal(matchesDomainList('192.0.2.64', list), '192.0.2.64/26');
    assert.equal(matchesDomainList('192.0.2.127', list), '192.0.2.64/26');
    assert.equal(matchesDomainList('192.0.2.63', list), null);
    assert.equal(matchesDomainList('192.0.2.128', list), null);
  });

  test('matches a single IPv4 entry exactly', () => {
    const list = compileDomainList(['192.0.2.7']);
    assert.equal(matchesDomainList('192.0.2.7', list), '192.0.2.7');
    assert.equal(matchesDomainList('192.0.2.8', list), null);
  });

  test('matches an IPv6 address inside a CIDR entry', () => {
    assert.equal(matchesDomainList('2001:db8:abcd::5', compileDomainList(['2001:db8::/32'])), '2001:db8::/32');
  });

  test('does not match an IPv6 address outside a CIDR entry', () => {
    assert.equal(matchesDomainList('2001:db9::5', compileDomainList(['2001:db8::/32'])), null);
  });

  test('matches a single IPv6 entry whatever its spelling', () => {
    assert.equal(matchesDomainList('2001:0DB8:0:0:0:0:0:7', compileDomainList(['2001:db8::7'])), '2001:db8::7');
  });

  test('matches an IPv6 host in brackets with a port', () => {
    assert.equal(matchesDomainList('[2001:db8::5]:5061', compileDomainList(['2001:db8::/32'])), '2001:db8::/32');
  });

  test('matches an IPv4-mapped IPv6 address against an IPv4 network', () => {
    assert.equal(matchesDomainList('::ffff:10.1.2.3', compileDomainList(['10.0.0.0/8'])), '10.0.0.0/8');
  });

  test('matches an IPv6 address with a zone id', () => {
    assert.equal(matchesDomainList('fe80::1%eth0', compileDomainList(['fe80::/10'])), 'fe80::/10');
  });

  test('does not match an IPv4 address against an IPv6 network', () => {
    assert.equal(matchesDomainList('10.1.2.3', compileDomainList(['::/0'])), null);
  });

  test('returns the longest matching prefix', () => {
    assert.equal(matchesDomainList('10.1.2.3', compileDomainList(['10.0.0.0/8', '10.1.0.0/16'])), '10.1.0.0/16');
  });

  test('accepts a CIDR entry with host bits set, as the network it names', () => {
    assert.equal(matchesDomainList('10.9.9.9', compileDomainList(['10.1.2.3/8'])), '10.1.2.3/8');
  });

  test('never matches an IP entry with a domain host', () => {
    assert.equal(matchesDomainList('corp.com', compileDomainList(['10.0.0.0/8'])), null);
  });
});

describe('compileDomainList: invalid entries', () => {
  const rejects = (entry: string) => {
    assert.throws(
      () => compileDomainList(['corp.com', entry], 'policy.secureDomains'),
      (error: unknown) => error instanceof ConfigError && error.key === 'policy.secureDomains[1]',
    );
  };

  test('rejects a wildcard', () => rejects('*.corp.com'));
  test('rejects a URI', () => rejects('sip:corp.com'));
  test('rejects a user address', () => rejects('alice@corp.com'));
  test('rejects a host with a port', () => rejects('corp.com:5061'));
  test('rejects a prefix longer than the address', () => rejects('10.0.0.0/33'));
  test('rejects an IPv6 prefix longer than 128', () => rejects('2001:db8::/129'));
  test('rejects a non-numeric prefix', () => rejects('10.0.0.0/x'));
  test('rejects a network that is not an IP address', () => rejects('corp.com/8'));
  test('rejects a truncated IPv4 address', () => rejects('10.0.0'));
  test('rejects a non-ASCII domain', () => rejects('bücher.de'));
  test('rejects an empty label', () => rejects('corp..com'));
});

describe('compilePolicy', () => {
  test('parses both lists', () => {
    const policy = compilePolicy(policyConfig(['corp.com'], ['10.0.0.0/8']));
    assert.equal(matchesDomainList('corp.com', policy.secure), 'corp.com');
    assert.equal(matchesDomainList('10.0.0.1', policy.internal), '10.0.0.0/8');
  });

  test('names the list of an invalid internal entry', () => {
    assert.throws(
      () => compilePolicy(policyConfig([], ['ok.com', 'bad domain'])),
      (error: unknown) => error instanceof ConfigError && error.key === 'policy.internalDomains[1]',
    );
  });

  test('warns about an entry in both lists', () => {
    const policy = compilePolicy(policyConfig(['corp.com', '10.0.0.0/8'], ['CORP.com.', '10.1.2.3/8']));
    assert.equal(policy.warnings.length, 2);
    assert.match(policy.warnings[0]!, /corp\.com/);
    assert.match(policy.warnings[1]!, /10\.0\.0\.0\/8/);
  });

  test('has no warnings for disjoint lists', () => {
    assert.deepEqual(compilePolicy(policyConfig(['corp.com'], ['eu.corp.com'])).warnings, []);
  });
});
