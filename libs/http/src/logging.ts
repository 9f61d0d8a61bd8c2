import { LogController } from 'fastify';

/**
 * No per-request info lines: at thousands of CDR POSTs a second they would cost more than the work. Services
 * log what matters themselves (refusals, errors, state changes).
 */
export function quietRequestLogging(): LogController {
  return new LogController({ disableRequestLogging: true });
}
