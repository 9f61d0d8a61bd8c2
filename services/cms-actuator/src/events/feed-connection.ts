import type { Logger } from '@cms/observability';
import WebSocket from 'ws';
import { type CmsEventMessage, messageAck, parseIncoming, type SubscriptionRequest, subscribeRequest } from './protocol.ts';

/** TCP keep-alive on the feed's socket: CMS does no ping/pong, so only the kernel can notice a silently dead peer. */
const KEEPALIVE_MS = 30_000;

/** The events WebSocket could not be opened: refused with an HTTP status (404: no events service), or not reached. */
export class FeedUnavailableError extends Error {
  /** The HTTP status CMS answered the upgrade with; null when it was not reached (refused, timed out, TLS). */
  readonly status: number | null;

  constructor(node: string, status: number | null, detail: string) {
    super(`CMS ${node} events feed unavailable: ${detail}`);
    this.name = 'FeedUnavailableError';
    this.status = status;
  }
}

export interface FeedConnectionOptions {
  node: string;
  /** The node's base URL (https://host:port); the token goes in the query of /events/v1. */
  baseUrl: string;
  token: string;
  /** The node's CA bundle (caFile), as the API client uses it; verification is always on. */
  ca: Buffer | undefined;
  handshakeTimeoutMs: number;
  log: Logger;
  /** Handles one CMS message; it is acknowledged once this resolves. A rejection drops the connection (a resync follows). */
  onMessage: (message: CmsEventMessage) => Promise<void>;
  /** The connection ended (whoever closed it). */
  onClose: (code: number) => void;
}

/**
 * One events WebSocket to a Call Bridge. Messages are handled one at a time in arrival order and each is
 * acknowledged after it was handled, so a slow store slows CMS down (it coalesces while it waits) instead of
 * piling messages up here. A subscribe request always carries the connection's complete set.
 */
export class FeedConnection {
  readonly #socket: WebSocket;
  readonly #o: FeedConnectionOptions;
  #nextMessageId = 1;
  #tail: Promise<void> = Promise.resolve();
  #closed = false;
  /** Messages from CMS acknowledged on this connection. */
  acknowledged = 0;

  private constructor(socket: WebSocket, options: FeedConnectionOptions) {
    this.#socket = socket;
    this.#o = options;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.#onText(data.toString());
    });
    socket.on('close', (code) => {
      this.#closed = true;
      options.onClose(code);
    });
    socket.on('error', (err) => options.log.debug({ node: options.node, err }, 'events feed socket error'));
  }

  static open(options: FeedConnectionOptions): Promise<FeedConnection> {
    const url = `${options.baseUrl.replace(/^http/, 'ws')}/events/v1?authToken=${encodeURIComponent(options.token)}`;
    const socket = new WebSocket(url, {
      ...(options.ca ? { ca: options.ca } : {}),
      handshakeTimeout: options.handshakeTimeoutMs,
      perMessageDeflate: false,
    });
    return new Promise((resolve, reject) => {
      const fail = (err: FeedUnavailableError) => {
        socket.removeAllListeners();
        socket.on('error', () => undefined);
        socket.terminate();
        reject(err);
      };
      socket.once('upgrade', (response) => response.socket.setKeepAlive(true, KEEPALIVE_MS));
      socket.once('unexpected-response', (_request, response) => {
        response.resume();
        fail(new FeedUnavailableError(options.node, response.statusCode ?? 0, `GET /events/v1 answered ${response.statusCode}`));
      });
      socket.once('error', (err) => fail(new FeedUnavailableError(options.node, null, err.message)));
      socket.once('open', () => {
        socket.removeAllListeners();
        resolve(new FeedConnection(socket, options));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends the complete subscription set of this connection (an empty set unsubscribes all). */
  subscribe(subscriptions: readonly SubscriptionRequest[]): void {
    if (this.#closed) return;
    this.#socket.send(subscribeRequest(this.#nextMessageId++, subscriptions));
  }

  close(): void {
    if (this.#closed) return;
    this.#socket.close(1000, 'closing');
    this.#socket.terminate();
  }

  #onText(text: string): void {
    const incoming = parseIncoming(text);
    if (incoming.kind === 'ack') {
      if (incoming.status !== 'success') {
        // A refused subscribe request changes nothing on CMS's side: the connection is dropped and rebuilt from scratch.
        this.#o.log.error(
          { node: this.#o.node, messageId: incoming.messageId, reason: incoming.reason },
          'CMS refused an events subscribe request',
        );
        this.#socket.terminate();
      }
      return;
    }
    if (incoming.kind !== 'message') return;
    const { message } = incoming;
    this.#tail = this.#tail.then(async () => {
      if (this.#closed) return;
      try {
        await this.#o.onMessage(message);
      } catch (err) {
        this.#o.log.warn({ node: this.#o.node, err }, 'events feed message could not be stored: reconnecting for a full resync');
        this.#socket.terminate();
        return;
      }
      if (this.#closed) return;
      this.#socket.send(messageAck(message.messageId));
      this.acknowledged++;
    });
  }
}
