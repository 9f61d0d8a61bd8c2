import { isIP } from 'node:net';

/** What an address (SIP URI, app user URI, bare host or number) names, for classification. */
export type ParsedAddress =
  | { kind: 'empty' }
  | { kind: 'phoneNumber' }
  | { kind: 'invalid' }
  | { kind: 'domain'; host: string }
  | { kind: 'ip'; host: string; family: 4 | 6 };

const EMPTY: ParsedAddress = { kind: 'empty' };
const PHONE: ParsedAddress = { kind: 'phoneNumber' };
const INVALID: ParsedAddress = { kind: 'invalid' };

const LABEL = /^[a-z0-9_-]{1,63}$/;
const DIGITS = /^[0-9]+$/;
const PHONE_NUMBER = /^\+?[0-9]+$/;
const PHONE_SEPARATORS = /[-() ]/g;

/**
 * Reduces `"Alice" <sips:alice@Video.Corp.com.:5061;transport=tls?x=y>` to `video.corp.com`: display name,
 * angle brackets, sip:/sips: scheme, user part (up to the last '@'), port, URI parameters and headers are
 * dropped, the host is lower-cased and one trailing dot removed. IP literals (IPv6 with or without brackets)
 * come back as kind 'ip'; tel: URIs and bare digit strings as 'phoneNumber'. Punycode (xn--) is left as it is,
 * and non-ASCII hosts are 'invalid': no IDN mapping, so look-alike characters never turn into a listed domain.
 */
export function parseAddress(address: string | null | undefined): ParsedAddress {
  let uri = stripDisplayName((address ?? '').trim());
  if (uri === '') return EMPTY;
  if (/^tel:/i.test(uri)) return PHONE;
  uri = uri.replace(/^sips?:/i, '');
  // RFC 3261 allows '@' only between user and host ('@' in parameters or headers must be escaped), while the
  // user part may contain ';' and '?': so split at the last '@' first, then cut parameters and headers.
  const at = uri.lastIndexOf('@');
  const hasUser = at >= 0;
  let hostPort = hasUser ? uri.slice(at + 1) : uri;
  const cut = hostPort.search(/[;?]/);
  if (cut >= 0) hostPort = hostPort.slice(0, cut);
  hostPort = hostPort.trim();
  if (hostPort === '') return hasUser ? INVALID : EMPTY;
  if (!hasUser && PHONE_NUMBER.test(hostPort.replace(PHONE_SEPARATORS, ''))) return PHONE;
  return parseHostPort(hostPort);
}

/** The host an address names (domain or IP literal), or null when it names none. */
export function sipHost(address: string | null | undefined): string | null {
  const parsed = parseAddress(address);
  return parsed.kind === 'domain' || parsed.kind === 'ip' ? parsed.host : null;
}

/** Lower-cases, drops one trailing dot and checks the labels; null when it is not a host name. */
function normaliseDomain(name: string): string | null {
  let host = name.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '' || host.length > 253) return null;
  const labels = host.split('.');
  if (!labels.every((label) => LABEL.test(label))) return null;
  // No top-level domain is numeric: "10.1.2" or "010.1.2.3" is a mistyped IP, not a name.
  if (DIGITS.test(labels[labels.length - 1]!)) return null;
  return host;
}

function stripDisplayName(value: string): string {
  let rest = value;
  if (rest.startsWith('"')) {
    // A quoted display name may itself contain '<', '>' or '@', and escaped quotes.
    let i = 1;
    while (i < rest.length && rest[i] !== '"') i += rest[i] === '\\' ? 2 : 1;
    rest = rest.slice(i + 1);
  }
  const open = rest.indexOf('<');
  if (open >= 0) {
    const close = rest.indexOf('>', open + 1);
    rest = rest.slice(open + 1, close >= 0 ? close : undefined);
  }
  return rest.trim();
}

function parseHostPort(hostPort: string): ParsedAddress {
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) return INVALID;
    const port = hostPort.slice(close + 1);
    if (port !== '' && !/^:[0-9]*$/.test(port)) return INVALID;
    const ip = ipLiteral(hostPort.slice(1, close));
    return ip?.family === 6 ? ip : INVALID;
  }
  // A bare IPv6 literal has several ':' and no port; try it whole before splitting one off.
  const whole = ipLiteral(hostPort);
  if (whole) return whole;
  let host = hostPort;
  const colon = hostPort.lastIndexOf(':');
  if (colon >= 0 && DIGITS.test(hostPort.slice(colon + 1))) host = hostPort.slice(0, colon);
  const ip = ipLiteral(host);
  if (ip) return ip.family === 4 ? ip : INVALID; // "2001:db8::1:5060" is read whole above; a port needs brackets
  const domain = normaliseDomain(host);
  return domain === null ? INVALID : { kind: 'domain', host: domain };
}

function ipLiteral(text: string): { kind: 'ip'; host: string; family: 4 | 6 } | null {
  const host = text.toLowerCase();
  const family = isIP(host);
  if (family === 4 || family === 6) return { kind: 'ip', host, family };
  // "1.2.3.4." is not an FQDN; still tolerate the trailing dot the way domains do.
  if (host.endsWith('.') && isIP(host.slice(0, -1)) === 4) return { kind: 'ip', host: host.slice(0, -1), family: 4 };
  return null;
}
