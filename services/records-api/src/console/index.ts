/**
 * The operator console, served by records-api at / : a sign-in form (server-rendered), then one page that
 * Preact + htm render in the browser from native ES modules (no build step, nothing from a CDN). The browser
 * reads and acts through the same /api/v1 routes as every other client, authenticated by a session cookie
 * instead of a bearer token; the live views are Server-Sent Events that re-read the API as that session.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '@cms/config';
import type { Database } from '@cms/db';
import { HttpProblem } from '@cms/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type apiTokens, installAuth, principalFor, requireRole, type SessionAuth } from '../auth.ts';
import { latestCmsWrites } from './cms-writes.ts';
import { consoleHealth } from './health.ts';
import { registerLiveRoutes } from './live.ts';
import { appShell, PAGE_HEADERS, signInPage } from './pages.ts';
import { exportRecordsCsv } from './records-csv.ts';
import { ConsoleRedis } from './redis.ts';
import { checkCsrf, clearedCookies, consoleSessionAuth, sameOrigin, sessionCookie, sessionId } from './session-cookie.ts';
import { SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS, SessionStore } from './sessions.ts';
import { SignInThrottle } from './sign-in-throttle.ts';

const PUBLIC_DIR = new URL('../../public/', import.meta.url);

/** Preact and htm as the browser loads them, straight from node_modules. */
const VENDOR: Record<string, string> = {
  'preact.js': import.meta.resolve('preact'),
  'hooks.js': import.meta.resolve('preact/hooks'),
  'htm.js': import.meta.resolve('htm'),
};

const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

/** The console's pages: each is the same shell; the script shows the page the path names. */
const APP_PATHS = ['/', '/meetings/:meetingKey', '/lobby', '/records', '/activity', '/health'];

/** Where to go after sign-in: a path of this site only (never //host or a scheme). */
function localPath(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) ? next : '/';
}

function parseForm(body: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body));
}

export interface OperatorConsole {
  /** For installAuth on /api/v1: the console's cookie session (with CSRF for changes) as a second way in. */
  sessionAuth: SessionAuth;
  register(app: FastifyInstance, options: { selfReady: () => Promise<boolean> }): Promise<void>;
  close(): Promise<void>;
}

export function createConsole(options: { config: Config; db: Database; tokens: ReturnType<typeof apiTokens> }): OperatorConsole {
  const { config, db, tokens } = options;
  const redis = new ConsoleRedis(config.redis);
  const sessions = new SessionStore(redis, config.queue.prefix);
  const sessionAuth = consoleSessionAuth(sessions);
  const assets = new Map<string, Buffer>();
  const throttle = new SignInThrottle();

  async function asset(url: URL): Promise<Buffer | undefined> {
    const key = url.href;
    const cached = assets.get(key);
    if (cached) return cached;
    try {
      const content = await readFile(url);
      assets.set(key, content);
      return content;
    } catch {
      return undefined;
    }
  }

  async function sendAsset(reply: FastifyReply, url: URL | undefined, name: string): Promise<FastifyReply> {
    const content = url ? await asset(url) : undefined;
    const type = CONTENT_TYPES[name.split('.').pop() ?? ''];
    if (!content || !type) throw new HttpProblem(404, 'Not Found', `No console file ${name}.`);
    return reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(content);
  }

  /** The session of a page request, or null (expired, signed out, none): pages then go to sign-in. */
  async function pageSession(request: FastifyRequest) {
    const id = sessionId(request);
    return id === undefined ? null : sessions.get(id);
  }

  async function register(app: FastifyInstance, registerOptions: { selfReady: () => Promise<boolean> }): Promise<void> {
    await app.register(async (scope) => {
      // The sign-in and sign-out forms post urlencoded bodies; nothing else here takes one.
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8192 }, (_req, body, done) => {
        done(null, parseForm(String(body)));
      });

      scope.get<{ Querystring: { next?: string; expired?: string; signedOut?: string } }>('/sign-in', async (request, reply) => {
        const next = localPath(request.query.next);
        if (await pageSession(request)) return reply.redirect(next, 303);
        const notice =
          request.query.expired !== undefined
            ? 'Your session has expired or was signed out. Sign in again to go on.'
            : request.query.signedOut !== undefined
              ? 'Signed out.'
              : undefined;
        return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(signInPage({ next, notice }));
      });

      scope.post<{ Body: Record<string, string> | undefined }>('/sign-in', async (request, reply) => {
        const form = request.body ?? {};
        const next = localPath(form.next);
        const page = (status: number, error: string) =>
          reply.code(status).headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(signInPage({ next, error }));
        // Login CSRF: another site must not sign a browser in as someone else.
        if (!sameOrigin(request)) return page(403, 'Sign-in refused: the form was not sent from this console.');
        const wait = throttle.retryAfter(request.ip);
        if (wait > 0) {
          reply.header('retry-after', String(wait));
          return page(429, `Too many refused sign-ins from this address; try again in ${wait} seconds.`);
        }
        const token = form.token ?? '';
        const principal = token === '' ? null : principalFor(token, tokens);
        if (!principal) {
          throttle.failed(request.ip);
          request.log.info('console sign-in refused: unknown token');
          return page(401, 'That token is not one this service knows. Use API_TOKEN or a token listed under api.tokens.');
        }
        throttle.succeeded(request.ip);
        const { id } = await sessions.create(principal);
        request.log.info({ tokenName: principal.name, role: principal.role }, 'console sign-in');
        return reply.header('set-cookie', sessionCookie(request, id)).redirect(next, 303);
      });

      scope.post<{ Body: Record<string, string> | undefined }>('/sign-out', async (request, reply) => {
        const id = sessionId(request);
        const session = id === undefined ? null : await sessions.get(id);
        if (id !== undefined && session) {
          checkCsrf(request, session, request.body?.csrf);
          await sessions.destroy(id);
          request.log.info({ tokenName: session.name }, 'console sign-out');
        }
        return reply.header('set-cookie', clearedCookies(request)).redirect('/sign-in?signedOut', 303);
      });

      for (const path of APP_PATHS) {
        scope.get(path, async (request, reply) => {
          if (!(await pageSession(request))) {
            const next = encodeURIComponent(request.url);
            return reply.redirect(`/sign-in?next=${next}${sessionId(request) ? '&expired' : ''}`, 303);
          }
          return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(appShell());
        });
      }

      scope.get<{ Params: { name: string } }>('/console/app/:name', async (request, reply) => {
        const { name } = request.params;
        const url = /^[a-z0-9-]+\.(js|css|svg)$/.test(name) ? new URL(name, PUBLIC_DIR) : undefined;
        return sendAsset(reply, url, name);
      });
      scope.get<{ Params: { name: string } }>('/console/vendor/:name', async (request, reply) => {
        const { name } = request.params;
        const href = VENDOR[name];
        return sendAsset(reply, href ? new URL(href) : undefined, name);
      });

      // Everything below needs a session (or a bearer token), like the API.
      await scope.register(async (api) => {
        installAuth(api, tokens, sessionAuth);
        api.get('/console/session', { preHandler: requireRole('viewer') }, async (request) => ({
          name: request.principal?.name,
          role: request.principal?.role,
          csrfToken: request.consoleSession?.csrf ?? null,
          idleTimeoutSeconds: SESSION_IDLE_SECONDS,
          maxSeconds: SESSION_MAX_SECONDS,
          cmsNodes: config.cms.nodes.map((n) => n.name),
        }));
        api.get('/console/api/health', { preHandler: requireRole('viewer') }, async () =>
          consoleHealth({
            config,
            db,
            redis,
            selfReady: async () => {
              const ready = await registerOptions.selfReady();
              return { name: 'records-api', url: '(this service)', ready, detail: ready ? 'database reachable' : 'database not reachable' };
            },
          }),
        );
        api.get<{ Querystring: { limit?: string; before?: string; node?: string; status?: string } }>(
          '/console/api/cms-writes',
          { preHandler: requireRole('viewer') },
          async (request) => {
            const limit = Math.min(Math.max(Number.parseInt(request.query.limit ?? '50', 10) || 50, 1), 200);
            const before = request.query.before === undefined ? undefined : Number.parseInt(request.query.before, 10);
            if (before !== undefined && !Number.isSafeInteger(before))
              throw new HttpProblem(400, 'Bad Request', 'before must be a write id');
            return latestCmsWrites(db, { limit, before, node: request.query.node, status: request.query.status });
          },
        );
        api.get('/console/records.csv', { preHandler: requireRole('viewer') }, async (request, reply) =>
          exportRecordsCsv(app, request, reply),
        );
        registerLiveRoutes(api, app, sessionAuth);
      });
    });
  }

  return { sessionAuth, register, close: () => redis.close() };
}
