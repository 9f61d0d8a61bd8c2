import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

/** An HTTP error answered as application/problem+json (RFC 9457). */
export class HttpProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;
  constructor(
    status: number,
    title: string,
    detail: string,
    options: { headers?: Record<string, string>; extra?: Record<string, unknown> } = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
  }
}

export function sendProblem(reply: FastifyReply, problem: HttpProblem): FastifyReply {
  for (const [k, v] of Object.entries(problem.headers)) reply.header(k, v);
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .send({
      type: 'about:blank',
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      instance: reply.request.url.split('?')[0],
      ...problem.extra,
    });
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  503: 'Service Unavailable',
};

export interface ProblemHandlerOptions {
  /**
   * Turns an error a route threw into the answer it deserves (e.g. a database outage into 503 + Retry-After),
   * or undefined to leave it to the default handling. Problems it returns are logged at warn, not as failures.
   */
  translate?: (error: unknown) => HttpProblem | undefined;
}

/** Every error a service answers becomes problem+json with a message a person can act on. */
export function installProblemHandlers(app: FastifyInstance, options: ProblemHandlerOptions = {}): void {
  app.setErrorHandler((error: FastifyError | HttpProblem, request, reply) => {
    if (error instanceof HttpProblem) return sendProblem(reply, error);
    const translated = options.translate?.(error);
    if (translated) {
      // The detail says what failed; the error itself (a driver message, often with the whole SQL) adds nothing.
      request.log.warn({ status: translated.status, detail: translated.detail }, 'request refused');
      return sendProblem(reply, translated);
    }
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    let detail = status >= 500 ? 'Internal error; see the service log for details.' : error.message;
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') detail = `The request body is larger than this endpoint accepts (${error.message}).`;
    if (error.validation) detail = `Invalid request: ${error.message}`;
    return sendProblem(reply, new HttpProblem(status, TITLES[status] ?? 'Error', detail));
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new HttpProblem(404, 'Not Found', `No route for ${request.method} ${request.url.split('?')[0]}.`)),
  );
}
