import type { FastifyRequest } from 'fastify';
import { parameterError } from '../errors.ts';
import { LAYOUTS } from '../model/types.ts';

export type Params = Record<string, string>;

/** Form body (x-www-form-urlencoded) merged over query parameters; repeated keys keep the last value. */
export function formParams(request: FastifyRequest): Params {
  const out: Params = {};
  for (const source of [request.query, request.body]) {
    if (!source || typeof source !== 'object') continue;
    for (const [key, value] of Object.entries(source as Record<string, unknown>)) {
      const last = Array.isArray(value) ? value.at(-1) : value;
      if (last !== undefined && last !== null) out[key] = String(last);
    }
  }
  return out;
}

/** `true`/`false`; an empty value clears to false. */
export function boolParam(params: Params, name: string): boolean | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false' || value === '') return false;
  throw parameterError(name);
}

export function intParam(params: Params, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw parameterError(name);
  const n = Number(value);
  if (n < min || n > max) throw parameterError(name);
  return n;
}

export function enumParam<T extends string>(params: Params, name: string, values: readonly T[]): T | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (!(values as readonly string[]).includes(value)) throw parameterError(name);
  return value as T;
}

/** chosenLayout, or its older alias layout. */
export function layoutParam(params: Params): string | undefined {
  for (const name of ['chosenLayout', 'layout']) {
    if (params[name] === '') return 'automatic'; // an empty value clears the choice
    const layout = enumParam(params, name, LAYOUTS);
    if (layout !== undefined) return layout;
  }
  return undefined;
}

/** Longest remoteParty accepted (a SIP URI; Cisco documents no limit, so ours is generous). */
const MAX_REMOTE_PARTY = 256;

/**
 * The address a dial-out calls: a URI (`user@host`, optionally `sip:`/`sips:`) or a number. Empty, blank, with
 * spaces or control characters, more than one `@`, or an empty user or host part → parameterError (our reading:
 * Cisco documents only that remoteParty is required).
 */
export function remotePartyParam(params: Params): string {
  const value = params.remoteParty;
  if (value === undefined || !isDialable(value)) throw parameterError('remoteParty');
  return value;
}

function isDialable(value: string): boolean {
  if (value.length === 0 || value.length > MAX_REMOTE_PARTY) return false;
  if (/[\s\u0000-\u001f\u007f<>"]/.test(value)) return false;
  const address = value.replace(/^sips?:/i, '');
  const parts = address.split('@');
  if (parts.length > 2) return false;
  if (parts.length === 2) return parts[0] !== '' && /^[A-Za-z0-9.-]+(:\d{1,5})?(;.*)?$/.test(parts[1] ?? '');
  return address !== '';
}
