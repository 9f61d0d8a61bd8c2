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
