import { isIP } from 'node:net';
import { ConfigError } from '@cms/config';
import { type ParsedAddress, parseAddress } from './address.ts';
import { FAMILY_BITS, type IpValue, ipValue, maskTo } from './ip.ts';

/**
 * One list of `policy.secureDomains` / `policy.internalDomains`, parsed once: domains (matching themselves and
 * their subdomains) and IP networks (CIDR or single addresses), each remembered as the operator wrote it.
 */
export interface DomainList {
  readonly domains: ReadonlyMap<string, string>;
  /** Per family: prefix lengths longest first, and network value -> entry per prefix length. */
  readonly networks: Readonly<Record<4 | 6, { prefixes: readonly number[]; byPrefix: ReadonlyMap<number, ReadonlyMap<bigint, string>> }>>;
  /** Normalised form of every entry (a domain, or "<network>/<prefix>"), to spot entries that sit in both lists. */
  readonly keys: ReadonlyMap<string, string>;
}

/** A list entry that matched, and how specific it is (labels of a domain, prefix length of a network). */
export interface ListMatch {
  entry: string;
  specificity: number;
}

/**
 * Parses list entries: `corp.com` (and `corp.com.`), `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`, `2001:db8::7`.
 * Anything else (wildcards, URIs, non-ASCII names, bad prefixes) is a ConfigError naming `<key>[<index>]`,
 * because a silently ignored entry would show a wrong security level.
 */
export function compileDomainList(entries: readonly string[], key = 'policy.domains'): DomainList {
  const domains = new Map<string, string>();
  const keys = new Map<string, string>();
  const byPrefix: Record<4 | 6, Map<number, Map<bigint, string>>> = { 4: new Map(), 6: new Map() };
  entries.forEach((raw, index) => {
    const entry = raw.trim();
    const network = parseNetwork(entry);
    if (network) {
      const { ip, prefix } = network;
      const value = maskTo(ip, prefix);
      const table = byPrefix[ip.family].get(prefix) ?? new Map<bigint, string>();
      byPrefix[ip.family].set(prefix, table);
      if (!table.has(value)) table.set(value, entry);
      keys.set(`${ip.family}:${value}/${prefix}`, entry);
      return;
    }
    if (entry.includes('/') || isIP(entry.split('%')[0]!) !== 0) {
      throw new ConfigError(`${key}[${index}]`, `"${raw}" is not a valid IP network (write e.g. 10.0.0.0/8 or 2001:db8::/32)`);
    }
    const parsed = parseAddress(entry);
    if (parsed.kind !== 'domain' || parsed.host !== entry.toLowerCase().replace(/\.$/, '')) {
      throw new ConfigError(
        `${key}[${index}]`,
        `"${raw}" is not a domain name, IP address or CIDR network (a domain such as "corp.com" also matches its subdomains; ` +
          'internationalised names are written in their xn-- form)',
      );
    }
    if (!domains.has(parsed.host)) domains.set(parsed.host, entry);
    keys.set(parsed.host, entry);
  });
  const networks = {
    4: { prefixes: [...byPrefix[4].keys()].sort((a, b) => b - a), byPrefix: byPrefix[4] },
    6: { prefixes: [...byPrefix[6].keys()].sort((a, b) => b - a), byPrefix: byPrefix[6] },
  };
  return { domains, networks, keys };
}

/**
 * The most specific entry of `list` matching a parsed host: a domain matches an entry equal to it or a parent
 * at a label boundary (video.corp.com matches corp.com; evilcorp.com and corp.com.attacker.net do not); an IP
 * matches only network entries. Phone numbers, empty and invalid addresses match nothing.
 */
export function matchParsed(list: DomainList, parsed: ParsedAddress): ListMatch | null {
  if (parsed.kind === 'domain') return matchDomain(list, parsed.host);
  if (parsed.kind === 'ip') {
    const ip = ipValue(parsed.host);
    return ip ? matchIp(list, ip) : null;
  }
  return null;
}

/** The most specific entry of `list` matching `host` (a host name or IP literal, or a whole address), or null. */
export function matchesDomainList(host: string, list: DomainList | readonly string[]): string | null {
  const compiled = isCompiled(list) ? list : compileDomainList(list);
  return matchParsed(compiled, parseAddress(host))?.entry ?? null;
}

function isCompiled(list: DomainList | readonly string[]): list is DomainList {
  return !Array.isArray(list);
}

function matchDomain(list: DomainList, host: string): ListMatch | null {
  // Walk from the full host up to its last label: the first hit is the most specific entry.
  let labels = host.split('.').length;
  let suffix = host;
  for (;;) {
    const entry = list.domains.get(suffix);
    if (entry !== undefined) return { entry, specificity: labels };
    const dot = suffix.indexOf('.');
    if (dot < 0) return null;
    suffix = suffix.slice(dot + 1);
    labels -= 1;
  }
}

function matchIp(list: DomainList, ip: IpValue): ListMatch | null {
  const { prefixes, byPrefix } = list.networks[ip.family];
  for (const prefix of prefixes) {
    const entry = byPrefix.get(prefix)?.get(maskTo(ip, prefix));
    if (entry !== undefined) return { entry, specificity: prefix };
  }
  return null;
}

function parseNetwork(entry: string): { ip: IpValue; prefix: number } | null {
  const slash = entry.indexOf('/');
  const address = slash >= 0 ? entry.slice(0, slash) : entry;
  if (address.includes('%') || isIP(address) === 0) return null;
  const ip = ipValue(address);
  if (!ip) return null;
  const written = isIP(address) === 4 ? 32 : 128;
  let prefix = written;
  if (slash >= 0) {
    const text = entry.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(text) || Number(text) > written) return null;
    prefix = Number(text);
  }
  // ::ffff:10.0.0.0/104 is written as IPv6 but ipValue folded it into IPv4: shift its prefix the same way.
  if (written === 128 && ip.family === 4) {
    if (prefix < 96) return null;
    prefix -= 96;
  }
  if (prefix > FAMILY_BITS[ip.family]) return null;
  return { ip, prefix };
}
