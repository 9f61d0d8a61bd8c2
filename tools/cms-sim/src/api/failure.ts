import type { FastifyReply } from 'fastify';
import { CmsFailure } from '../errors.ts';
import { sendXml } from './xml.ts';

/** `<failureDetails><reason /></failureDetails>`; parameterError names the parameter as CMS does. */
export function sendFailure(reply: FastifyReply, failure: CmsFailure): FastifyReply {
  const detail = failure.parameter ? { '@_parameter': failure.parameter, '@_error': 'invalidValue' } : '';
  return sendXml(reply, 'failureDetails', { [failure.failureReason]: detail }, failure.status);
}

export function asFailure(err: unknown): CmsFailure | null {
  return err instanceof CmsFailure ? err : null;
}
