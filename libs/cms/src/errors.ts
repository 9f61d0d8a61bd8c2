/** What went wrong below HTTP: no CMS answer at all (status 0). */
export type CmsTransportFailure = 'timeout' | 'connectionFailed' | 'tlsFailed';

export interface CmsApiErrorInit {
  node: string;
  method: string;
  path: string;
  /** HTTP status; 0 when CMS did not answer (timeout, connection or TLS failure). */
  status: number;
  /** The element inside <failureDetails> (callDoesNotExist, ...), or the transport failure; null when CMS gave none. */
  failureReason: string | null;
  /** For parameterError: the parameter CMS refused. */
  parameter?: string;
  cause?: unknown;
}

/**
 * A CMS API request that did not succeed. Carries what an operator needs (node, request, status, CMS's failure
 * reason) and never the credentials.
 */
export class CmsApiError extends Error {
  readonly node: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly failureReason: string | null;
  readonly parameter: string | undefined;

  constructor(init: CmsApiErrorInit) {
    const what =
      init.status === 0
        ? `failed (${init.failureReason})`
        : `answered ${init.status}${init.failureReason ? ` (${init.failureReason})` : ''}`;
    const detail = init.parameter ? ` for parameter ${init.parameter}` : '';
    const cause = init.status === 0 && init.cause instanceof Error ? `: ${init.cause.message}` : '';
    super(
      `CMS ${init.node} ${init.method} ${init.path} ${what}${detail}${cause}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.name = 'CmsApiError';
    this.node = init.node;
    this.method = init.method;
    this.path = init.path;
    this.status = init.status;
    this.failureReason = init.failureReason;
    this.parameter = init.parameter;
  }

  /** 503: CMS is temporarily busy; the same request should be sent again later. */
  get isBusy(): boolean {
    return this.status === 503;
  }

  /** 404: the object (call, call leg, participant) does not exist (any more). */
  get isNotFound(): boolean {
    return this.status === 404;
  }

  /** 401/403: bad credentials or an API user without the role; retrying will not help until someone fixes it. */
  get isAuth(): boolean {
    return this.status === 401 || this.status === 403;
  }

  /** The certificate of CMS could not be verified: a configuration problem (caFile), not a passing fault. */
  get isTlsFailure(): boolean {
    return this.status === 0 && this.failureReason === 'tlsFailed';
  }

  /** Worth retrying with back-off: 5xx other than 503 (which has its own policy), timeouts, connection failures. */
  get isRetryable(): boolean {
    if (this.status === 0) return this.failureReason === 'timeout' || this.failureReason === 'connectionFailed';
    return this.status >= 500 && this.status !== 503;
  }
}
