import { createHash, randomBytes } from 'node:crypto';
import type { Role } from '@cms/config';
import type { Redis } from '@cms/queue';
import type { ConsoleRedis } from './redis.ts';

/** A signed-in console user: who (the token's name and role, never the token) and the CSRF token of the session. */
export interface ConsoleSession {
  name: string;
  role: Role;
  /** Synchronizer token: every state-changing request of this session must carry it (X-CSRF-Token or a form field). */
  csrf: string;
  createdAt: number;
  /** Absolute end, whatever the activity (ms since the epoch). */
  expiresAt: number;
}

/** A session ends after this long without a request... */
export const SESSION_IDLE_SECONDS = 30 * 60;
/** ...and after this long in any case: a stolen cookie is not good for ever. */
export const SESSION_MAX_SECONDS = 12 * 60 * 60;

/**
 * Console sessions in Redis, so every records-api replica knows them and they end by themselves (TTL = idle
 * timeout, renewed by each request, capped by the absolute end). The key is the SHA-256 of the cookie value: a
 * Redis dump does not give anyone a usable cookie.
 */
export class SessionStore {
  readonly #redis: ConsoleRedis;
  readonly #prefix: string;

  constructor(redis: ConsoleRedis, prefix: string) {
    this.#redis = redis;
    this.#prefix = `${prefix}:console:session:`;
  }

  #key(id: string): string {
    return this.#prefix + createHash('sha256').update(id).digest('hex');
  }

  #ready(): Promise<Redis> {
    return this.#redis.ready('Console sessions');
  }

  /** Starts a session for a principal; returns the cookie value (shown to nobody else) and the session. */
  async create(principal: { name: string; role: Role }): Promise<{ id: string; session: ConsoleSession }> {
    const redis = await this.#ready();
    const id = randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: ConsoleSession = {
      name: principal.name,
      role: principal.role,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: now,
      expiresAt: now + SESSION_MAX_SECONDS * 1000,
    };
    await redis.set(this.#key(id), JSON.stringify(session), 'EX', SESSION_IDLE_SECONDS);
    return { id, session };
  }

  /** The live session for a cookie value, its idle timeout renewed; null when unknown, expired or signed out. */
  async get(id: string): Promise<ConsoleSession | null> {
    const redis = await this.#ready();
    const key = this.#key(id);
    const raw = await redis.get(key);
    if (raw === null) return null;
    const session = JSON.parse(raw) as ConsoleSession;
    const left = Math.floor((session.expiresAt - Date.now()) / 1000);
    if (left <= 0) {
      await redis.del(key);
      return null;
    }
    await redis.expire(key, Math.min(SESSION_IDLE_SECONDS, left));
    return session;
  }

  async destroy(id: string): Promise<void> {
    const redis = await this.#ready();
    await redis.del(this.#key(id));
  }
}
