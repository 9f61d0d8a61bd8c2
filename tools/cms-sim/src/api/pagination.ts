import type { FastifyRequest } from 'fastify';
import { intParam, type Params } from './params.ts';

export interface Page<T> {
  total: number;
  items: T[];
}

/**
 * `offset`/`limit` paging with a server-side cap: however large `limit` is, at most `pageCap` objects come
 * back, and `total` tells the client to keep paging.
 */
export function paginate<T>(items: readonly T[], request: FastifyRequest, pageCap: number): Page<T> {
  const query = (request.query ?? {}) as Params;
  const offset = intParam(query, 'offset') ?? 0;
  const limit = Math.min(intParam(query, 'limit') ?? pageCap, pageCap);
  return { total: items.length, items: items.slice(offset, offset + limit) };
}
