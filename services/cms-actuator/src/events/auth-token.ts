import type { CmsClient } from '@cms/cms';

/** CMS answered POST /api/v1/authTokens without the X-Cisco-CMS-Auth-Token header. */
class AuthTokenMissingError extends Error {
  constructor(node: string) {
    super(`CMS ${node} answered POST /api/v1/authTokens without an X-Cisco-CMS-Auth-Token header`);
    this.name = 'AuthTokenMissingError';
  }
}

/**
 * The events feed's auth tokens of one node (POST /api/v1/authTokens with the API user's Basic auth). A token is
 * only presented when a WebSocket connects, and CMS lets tokens expire: the one in hand is replaced once it is
 * `refreshMs` old, so a reconnect or a further connection never presents an expired one. The token is a secret:
 * it is never logged (the WebSocket URL that carries it is not either).
 */
export class AuthTokens {
  readonly #client: CmsClient;
  readonly #refreshMs: number;
  #token: { value: string; at: number } | null = null;
  #pending: Promise<string> | null = null;
  /** Tokens asked for so far (tests and the log). */
  issued = 0;

  constructor(client: CmsClient, refreshMs: number) {
    this.#client = client;
    this.#refreshMs = refreshMs;
  }

  /** A token younger than refreshMs, asking CMS for a new one when needed. */
  current(): Promise<string> {
    if (this.#token && Date.now() - this.#token.at < this.#refreshMs) return Promise.resolve(this.#token.value);
    return this.renew();
  }

  /** Asks for a new token now (before the one in hand expires, or after CMS refused it). */
  renew(): Promise<string> {
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = null;
    });
    return this.#pending;
  }

  /** Whether the token in hand is due for renewal. */
  get due(): boolean {
    return this.#token !== null && Date.now() - this.#token.at >= this.#refreshMs;
  }

  /** CMS refused the token (a restarted bridge forgets its tokens): the next connection asks for a new one. */
  forget(): void {
    this.#token = null;
  }

  async #fetch(): Promise<string> {
    const response = await this.#client.request('POST', '/api/v1/authTokens');
    const header = response.headers['x-cisco-cms-auth-token'];
    const value = Array.isArray(header) ? header[0] : header;
    if (!value) throw new AuthTokenMissingError(this.#client.node);
    this.#token = { value, at: Date.now() };
    this.issued++;
    return value;
  }
}
