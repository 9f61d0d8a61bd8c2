import { z } from 'zod';

/**
 * Edit distance (optimal string alignment: insertions, deletions, substitutions and swaps of two neighbours each
 * cost 1), compared case-insensitively: the typos we want to catch are a missing "s", a swapped pair of letters or
 * the wrong case (`securedomains`).
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  // d[i][j] = distance between the first i characters of s and the first j of t.
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min((d[i - 1]?.[j] ?? 0) + 1, (d[i]?.[j - 1] ?? 0) + 1, (d[i - 1]?.[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, (d[i - 2]?.[j - 2] ?? 0) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return d[s.length]?.[t.length] ?? 0;
}

/**
 * The known key nearest to `key`, or undefined when none is close enough to be a plausible typo: at most a third of
 * the longer name may differ (at least one character), and never all of `key`, so `secureDomain` finds `secureDomains`
 * but `bogus` finds nothing rather than a random suggestion, and `4` in `policy.messages` does not find `1`.
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  const plausible = bestDistance <= Math.max(1, Math.floor(Math.max(key.length, best.length) / 3)) && bestDistance < key.length;
  return plausible ? best : undefined;
}

/**
 * The keys an object of `schema` may hold at `path` (array positions are numbers), looking through defaults,
 * optionals and arrays; empty when `path` does not lead to an object.
 */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: unknown = schema;
  const unwrap = (): void => {
    while (
      node instanceof z.ZodDefault ||
      node instanceof z.ZodPrefault ||
      node instanceof z.ZodOptional ||
      node instanceof z.ZodNullable
    ) {
      node = node.unwrap();
    }
  };
  for (const part of path) {
    unwrap();
    if (node instanceof z.ZodArray && typeof part === 'number') node = node.element;
    else if (node instanceof z.ZodObject && typeof part === 'string') node = node.shape[part];
    else return [];
  }
  unwrap();
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}
