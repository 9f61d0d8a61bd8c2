import { isIP } from 'node:net';

/** An address as a number, IPv4-mapped IPv6 (::ffff:a.b.c.d) folded into IPv4 so either spelling matches. */
export interface IpValue {
  family: 4 | 6;
  value: bigint;
}

export const FAMILY_BITS = { 4: 32, 6: 128 } as const;

const MAPPED_PREFIX = 0xffffn << 32n;

/** Parses an IP literal already checked by isIP (an IPv6 zone id, "%eth0", is ignored); null otherwise. */
export function ipValue(text: string): IpValue | null {
  const literal = text.split('%')[0]!;
  const family = isIP(literal);
  if (family === 4) return { family: 4, value: ipv4Value(literal) };
  if (family !== 6) return null;
  const value = ipv6Value(literal);
  if (value >> 32n === MAPPED_PREFIX >> 32n) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** The value with every bit after the first `prefix` cleared. */
export function maskTo(ip: IpValue, prefix: number): bigint {
  const bits = BigInt(FAMILY_BITS[ip.family]);
  const hostBits = bits - BigInt(prefix);
  return (ip.value >> hostBits) << hostBits;
}

function ipv4Value(literal: string): bigint {
  return literal.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6Value(literal: string): bigint {
  const [head = '', tail] = literal.split('::');
  const groups = (part: string): bigint[] => {
    if (part === '') return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [BigInt(`0x${group}`)];
      const v4 = ipv4Value(group); // an embedded IPv4 address fills the last two groups
      return [v4 >> 16n, v4 & 0xffffn];
    });
  };
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<bigint>(8 - left.length - right.length).fill(0n), ...right];
  return all.reduce((acc, group) => (acc << 16n) | group, 0n);
}
