import { type Config, ConfigError, type Role } from '@cms/config';
import { bearerToken, HttpProblem, tokenMatches } from '@cms/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Who a request acts as: the configured token's name (safe to log) and role, never the token itself. */
export interface Principal {
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on /api routes; null where no hook ran. */
    principal: Principal | null;
  }
}

interface ApiToken extends Principal {
  token: string;
}

/** viewer < operator < admin: a role may do everything the roles below it may. */
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** API_TOKEN is one admin token named "admin"; api.tokens adds named ones. At least one is required. */
export function apiTokens(api: Config['api']): ApiToken[] {
  const tokens: ApiToken[] = [];
  if (api.token) tokens.push({ name: 'admin', role: 'admin', token: api.token });
  tokens.push(...api.tokens);
  if (tokens.length === 0) {
    throw new ConfigError('api.token', 'is required: set API_TOKEN (an admin token) or add named tokens with roles under api.tokens');
  }
  return tokens;
}

const REALM = 'Bearer realm="records-api"';

function unauthorized(detail: string, wwwAuthenticate: string): HttpProblem {
  return new HttpProblem(401, 'Unauthorized', detail, { headers: { 'WWW-Authenticate': wwwAuthenticate } });
}

/** Finds the token's owner comparing against every configured token, so timing says nothing about which one matched. */
export function principalFor(presented: string, tokens: ApiToken[]): Principal | null {
  let found: Principal | null = null;
  for (const candidate of tokens) {
    if (tokenMatches(presented, candidate.token) && found === null) found = { name: candidate.name, role: candidate.role };
  }
  return found;
}

/**
 * A browser session instead of a bearer token (the operator console's cookie): the principal it was signed in as,
 * or null when the request carries no session. It throws itself for an expired session or a missing CSRF token.
 */
export type SessionAuth = (request: FastifyRequest) => Promise<Principal | null>;

/**
 * Authenticates every request of `scope` (401 without a known bearer token, or a console session when `sessionAuth`
 * is given) and tags its log lines with the token's name.
 */
export function installAuth(scope: FastifyInstance, tokens: ApiToken[], sessionAuth?: SessionAuth): void {
  if (!scope.hasRequestDecorator('principal')) scope.decorateRequest('principal', null);
  scope.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const presented = bearerToken(request.headers.authorization);
    const principal = presented === undefined ? await sessionPrincipal(request, sessionAuth) : principalFor(presented, tokens);
    if (principal === null) {
      if (presented === undefined) {
        throw unauthorized('Send "Authorization: Bearer <token>" with a token from API_TOKEN or api.tokens.', REALM);
      }
      throw unauthorized(
        'The bearer token is not one this service knows; use a token from API_TOKEN or api.tokens.',
        `${REALM}, error="invalid_token"`,
      );
    }
    request.principal = principal;
    const log = request.log.child({ tokenName: principal.name, role: principal.role });
    request.log = log;
    reply.log = log;
  });
}

async function sessionPrincipal(request: FastifyRequest, sessionAuth: SessionAuth | undefined): Promise<Principal | null> {
  return sessionAuth ? await sessionAuth(request) : null;
}

/** preHandler for routes that need at least `role` (viewer for reads; call control needs operator). */
export function requireRole(role: Role) {
  return async function checkRole(request: FastifyRequest): Promise<void> {
    const principal = request.principal;
    if (!principal) throw unauthorized('Send "Authorization: Bearer <token>" with a token from API_TOKEN or api.tokens.', REALM);
    if (RANK[principal.role] < RANK[role]) {
      throw new HttpProblem(
        403,
        'Forbidden',
        `This endpoint needs the ${role} role; the token "${principal.name}" has the ${principal.role} role.`,
      );
    }
  };
}
