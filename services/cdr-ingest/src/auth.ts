import { bearerToken, HttpProblem, tokenMatcher } from '@cms/http';
import type { FastifyRequest } from 'fastify';

/**
 * The check of every CDR POST's token. CMS can only authenticate through the receiver URI, so the token comes as
 * ?token= (CMS sends query strings verbatim); Authorization: Bearer is accepted for other senders. Compared in
 * constant time (the expected token hashed once, here).
 */
export function ingestTokenCheck(expected: string): (request: FastifyRequest) => void {
  const matches = tokenMatcher(expected);
  return (request) => checkIngestToken(request, matches);
}

function checkIngestToken(request: FastifyRequest, matches: (presented: string | undefined) => boolean): void {
  const query = request.query as Record<string, unknown> | undefined;
  const fromQuery = typeof query?.token === 'string' ? query.token : undefined;
  const presented = fromQuery ?? bearerToken(request.headers.authorization);
  if (!matches(presented)) {
    throw new HttpProblem(
      401,
      'Unauthorized',
      presented === undefined
        ? 'No token: configure the CDR receiver URI as http(s)://<host>:<port>/cdr/<node>?token=<INGEST_TOKEN>.'
        : 'The token does not match INGEST_TOKEN.',
      { headers: { 'WWW-Authenticate': 'Bearer realm="cdr-ingest"' } },
    );
  }
}
