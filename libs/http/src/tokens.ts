import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * Constant-time comparison. Both sides are hashed first so neither the content nor the length of the
 * expected token leaks through timing.
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  return tokenMatcher(expected)(presented);
}

/**
 * tokenMatches for one expected token, hashed once: for a check on every request (cdr-ingest's, where the
 * second hash was a few per cent of the CPU a POST costs).
 */
export function tokenMatcher(expected: string): (presented: string | undefined) => boolean {
  const expectedDigest = sha256(expected);
  return (presented) => presented !== undefined && timingSafeEqual(sha256(presented), expectedDigest);
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
