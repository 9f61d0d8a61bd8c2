import { bearerToken, HttpProblem, tokenMatches } from '@cms/http';
import type { FastifyRequest } from 'fastify';

/**
 * CMS can only authenticate through the receiver URI, so the token comes as ?token= (CMS sends query strings
 * verbatim); Authorization: Bearer is accepted for other senders. Compared in constant time.
 */
export function checkIngestToken(request: FastifyRequest, expected: string): void {
  const query = request.query as Record<string, unknown> | undefined;
  const fromQuery = typeof query?.token === 'string' ? query.token : undefined;
  const presented = fromQuery ?? bearerToken(request.headers.authorization);
  if (!tokenMatches(presented, expected)) {
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
