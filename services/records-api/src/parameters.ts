import { HttpProblem } from '@cms/http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isRfc3339 } from './time.ts';

/**
 * Checks on parameters as the client wrote them, before the schema sees them. The schema validator coerces
 * text ("Infinity", "1e400" and "0x10" all pass as numbers), decodes what it can (%FF quietly becomes
 * something else) and lets U+0000 through, which Postgres refuses in text: those must answer 400 naming the
 * parameter, never reach SQL.
 */

function bad(where: string, message: string): HttpProblem {
  return new HttpProblem(400, 'Bad Request', `Invalid request: ${where} ${message}`);
}

/** application/x-www-form-urlencoded decoding; undefined where the text is not valid percent-encoded UTF-8. */
function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** The router's limit on one path parameter, above every schema's maxLength even percent-encoded (256 × 3). */
export const MAX_PARAM_LENGTH = 1024;

const INTEGER = /^-?[0-9]+$/;

export const TIMESTAMP_RULE =
  'must be an RFC 3339 timestamp with a time zone that Postgres can store (years 0001 to 9999, UTC offsets up to ±15:59), e.g. 2024-03-01T08:00:00Z';

interface ParameterSchema {
  type?: string;
  format?: string;
}

function schemaProperties(schema: unknown): Record<string, ParameterSchema> {
  const properties = (schema as { properties?: unknown } | undefined)?.properties;
  return typeof properties === 'object' && properties !== null ? (properties as Record<string, ParameterSchema>) : {};
}

/** What the schema validator would accept too loosely for a parameter of this schema; undefined when fine. */
function typeProblem(value: string, schema: ParameterSchema | undefined): string | undefined {
  if (!schema) return undefined;
  if (schema.type === 'integer' && !INTEGER.test(value)) return 'must be a whole number written in decimal digits';
  if (schema.type === 'boolean' && value !== 'true' && value !== 'false') return 'must be true or false';
  if (schema.format === 'date-time' && !isRfc3339(value)) return TIMESTAMP_RULE;
  return undefined;
}

function checkQuery(request: FastifyRequest): void {
  const url = request.url;
  const start = url.indexOf('?');
  if (start < 0) return;
  const properties = schemaProperties(request.routeOptions.schema?.querystring);
  const seen = new Map<string, number>();
  for (const pair of url.slice(start + 1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const name = decode(rawName);
    if (name === undefined) throw bad('querystring', 'has a parameter name that is not valid percent-encoded UTF-8');
    const where = `querystring/${name.replace(/\0/g, '%00')}`;
    if (name.includes('\0')) throw bad(where, 'is not a known parameter (its name holds a NUL character, %00)');
    const value = decode(eq < 0 ? '' : pair.slice(eq + 1));
    if (value === undefined) throw bad(where, 'is not valid percent-encoded UTF-8');
    if (value.includes('\0')) throw bad(where, 'must not contain a NUL character (%00)');
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    if (count > 1) throw bad(where, 'is given more than once; give it once');
    const problem = typeProblem(value, properties[name]);
    if (problem) throw bad(where, problem);
  }
}

function checkParams(request: FastifyRequest): void {
  const params = request.params as Record<string, unknown> | undefined;
  if (!params) return;
  const properties = schemaProperties(request.routeOptions.schema?.params);
  for (const [name, value] of Object.entries(params)) {
    if (typeof value !== 'string') continue;
    if (value.includes('\0')) throw bad(`params/${name}`, 'must not contain a NUL character (%00)');
    const problem = typeProblem(value, properties[name]);
    if (problem) throw bad(`params/${name}`, problem);
  }
}

/** Installs the checks on every route of `scope` (after authentication, before schema validation). */
export function installParameterChecks(scope: FastifyInstance): void {
  scope.addHook('preValidation', async (request) => {
    checkParams(request);
    checkQuery(request);
  });
}

/**
 * A path the router cannot decode (%FF) or a path parameter over the router's length limit never reaches a route,
 * so the route's name for that segment is found from the route patterns: /api/v1/calls/%FF is params/id.
 */
export function pathProblem(patterns: readonly string[], path: string, problem: 'encoding' | 'length'): HttpProblem {
  const segments = path.split('?')[0]?.split('/') ?? [];
  const culprit = segments.findIndex((segment) =>
    problem === 'encoding' ? decode(segment) === undefined : segment.length > MAX_PARAM_LENGTH,
  );
  let where = 'the path';
  for (const pattern of patterns) {
    const parts = pattern.split('/');
    if (parts.length !== segments.length || culprit < 0) continue;
    const matches = parts.every((part, i) => part.startsWith(':') || i === culprit || part === segments[i]);
    const part = parts[culprit];
    if (matches && part?.startsWith(':')) {
      where = `params/${part.slice(1)}`;
      break;
    }
  }
  return bad(where, problem === 'encoding' ? 'is not valid percent-encoded UTF-8' : `is longer than ${MAX_PARAM_LENGTH} characters`);
}
