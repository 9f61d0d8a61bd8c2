/**
 * Refused sign-ins per client address: after MAX_FAILURES within WINDOW_MS the form answers 429 until the window
 * ends, so the form cannot be used to guess tokens at speed. In memory, per replica: a brake, not an account lock.
 */
const MAX_FAILURES = 10;
const WINDOW_MS = 60_000;
/** Addresses remembered at most (oldest forgotten first), so a flood of addresses cannot grow memory without end. */
const MAX_ADDRESSES = 10_000;

export class SignInThrottle {
  readonly #failures = new Map<string, { count: number; since: number }>();

  /** Seconds to wait before trying again, or 0 when this address may try now. */
  retryAfter(address: string, now = Date.now()): number {
    const entry = this.#failures.get(address);
    if (!entry || now - entry.since >= WINDOW_MS) return 0;
    return entry.count >= MAX_FAILURES ? Math.ceil((entry.since + WINDOW_MS - now) / 1000) : 0;
  }

  failed(address: string, now = Date.now()): void {
    const entry = this.#failures.get(address);
    if (!entry || now - entry.since >= WINDOW_MS) {
      this.#failures.delete(address);
      if (this.#failures.size >= MAX_ADDRESSES) {
        const oldest = this.#failures.keys().next().value;
        if (oldest !== undefined) this.#failures.delete(oldest);
      }
      this.#failures.set(address, { count: 1, since: now });
    } else {
      entry.count++;
    }
  }

  succeeded(address: string): void {
    this.#failures.delete(address);
  }
}
