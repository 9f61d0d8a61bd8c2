import { randomBytes } from 'node:crypto';

/** Auth tokens from POST /api/v1/authTokens, accepted once each by GET /events/v1?authToken=. */
export class TokenStore {
  readonly #ttlMs: number;
  readonly #tokens = new Map<string, number>();

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  issue(now: number = Date.now()): string {
    for (const [token, expires] of this.#tokens) if (expires <= now) this.#tokens.delete(token);
    const token = randomBytes(24).toString('base64url');
    this.#tokens.set(token, now + this.#ttlMs);
    return token;
  }

  valid(token: string | undefined, now: number = Date.now()): boolean {
    if (!token) return false;
    const expires = this.#tokens.get(token);
    return expires !== undefined && expires > now;
  }

  /** A restarted bridge forgets its tokens. */
  clear(): void {
    this.#tokens.clear();
  }
}
