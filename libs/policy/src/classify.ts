import { type ParsedAddress, parseAddress } from './address.ts';
import type { CompiledPolicy } from './compile.ts';
import { matchParsed } from './domain-list.ts';
import type { Classification, LegFacts } from './types.ts';

/**
 * The level of one participant and the rule that gave it:
 * - guests (guestConnection=true) are external (3), always;
 * - app legs (type acano, or subType webApp) are external (3), or with `appUsers: byDomain` classified by the
 *   domain of their URI like SIP legs;
 * - everything else by the host of its address, remoteAddress first when it names one (it is what a later
 *   update reports), else remoteParty: the most specific matching entry of secureDomains (1) or
 *   internalDomains (2) wins; an entry in both lists counts as internal, the worse level, so a banner never
 *   overstates security; no match, phone numbers, IPs outside the listed networks and unreadable addresses -> 3.
 */
export function classifyLeg(leg: LegFacts, policy: CompiledPolicy): Classification {
  if (leg.guestConnection === true) return { level: 3, rule: 'guest' };
  const isApp = (leg.type ?? '').toLowerCase() === 'acano' || (leg.subType ?? '').toLowerCase() === 'webapp';
  if (isApp && policy.appUsers !== 'byDomain') return { level: 3, rule: 'app' };
  return classifyAddress(leg, policy);
}

function classifyAddress(leg: LegFacts, policy: CompiledPolicy): Classification {
  let invalid: string | null = null;
  for (const address of [leg.remoteAddress, leg.remoteParty]) {
    if (!address) continue;
    const parsed = parseAddress(address);
    if (parsed.kind === 'empty') continue;
    if (parsed.kind === 'invalid') {
      invalid ??= address;
      continue;
    }
    return classifyParsed(parsed, address, policy);
  }
  return invalid === null ? { level: 3, rule: 'noAddress' } : { level: 3, rule: 'invalidAddress', address: invalid };
}

function classifyParsed(
  parsed: Exclude<ParsedAddress, { kind: 'empty' | 'invalid' }>,
  address: string,
  policy: CompiledPolicy,
): Classification {
  if (parsed.kind === 'phoneNumber') return { level: 3, rule: 'phoneNumber', address };
  const { host } = parsed;
  const secure = matchParsed(policy.secure, parsed);
  const internal = matchParsed(policy.internal, parsed);
  if (internal && (!secure || internal.specificity >= secure.specificity)) {
    return { level: 2, rule: 'internalDomain', matched: internal.entry, host, address };
  }
  if (secure) return { level: 1, rule: 'secureDomain', matched: secure.entry, host, address };
  return { level: 3, rule: parsed.kind === 'ip' ? 'ipNotListed' : 'unlistedDomain', host, address };
}
