import type { Config } from '@cms/config';
import { cdrGaps, cmsNodeStatus, type Database } from '@cms/db';
import {
  createCdrBatchesQueue,
  createCmsReconcileQueue,
  createCmsWritesQueue,
  createPolicyRecomputeQueue,
  type QueueConnection,
} from '@cms/queue';
import { desc, sql } from 'drizzle-orm';
import { toRfc3339 } from '../time.ts';
import type { ConsoleRedis } from './redis.ts';

const PROBE_TIMEOUT_MS = 1_500;

interface ServiceReadiness {
  name: string;
  url: string;
  ready: boolean;
  detail: string;
}

/**
 * Where a service's /readyz answers: its console.serviceUrls entry when set (another host, e.g. its docker compose
 * service name), else its configured host and port on this host, a wildcard bind address reached on the loopback.
 */
function readyzUrl(base: string | undefined, host: string, port: number): string {
  if (base) return `${base.replace(/\/+$/, '')}/readyz`;
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}/readyz`;
}

/** Each other service's name and the /readyz URL the Health page asks. */
export function serviceReadyzUrls(config: Config): { name: string; url: string }[] {
  const urls = config.console.serviceUrls;
  return [
    { name: 'cdr-ingest', url: readyzUrl(urls.cdrIngest, config.ingest.host, config.ingest.metricsPort) },
    { name: 'policy-worker', url: readyzUrl(urls.policyWorker, config.policyWorker.host, config.policyWorker.port) },
    { name: 'cms-actuator', url: readyzUrl(urls.cmsActuator, config.actuator.host, config.actuator.port) },
  ];
}

async function probe(name: string, url: string): Promise<ServiceReadiness> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const text = await res.text();
    let detail = text;
    try {
      const body = JSON.parse(text) as { status?: string; checks?: { name: string; ok: boolean; error?: string }[] };
      detail = Array.isArray(body.checks)
        ? body.checks.map((c) => `${c.name} ${c.ok ? 'ok' : `failing${c.error ? ` (${c.error})` : ''}`}`).join(', ')
        : (body.status ?? text);
    } catch {
      // Not JSON: show it as it came.
    }
    return { name, url, ready: res.ok, detail: detail.slice(0, 500) };
  } catch (err) {
    return { name, url, ready: false, detail: `not reachable from records-api at ${url}: ${(err as Error).message}` };
  }
}

interface QueueDepth {
  queue: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/** Jobs waiting, running, delayed and failed on every queue of the job graph (per CMS node for the write queues). */
async function queueDepths(config: Config, redis: ConsoleRedis): Promise<QueueDepth[] | { error: string }> {
  let connection: QueueConnection;
  try {
    connection = { connection: await redis.ready('Queue depths'), prefix: config.queue.prefix };
  } catch (err) {
    return { error: (err as Error).message };
  }
  const queues = [
    createCdrBatchesQueue(connection),
    createPolicyRecomputeQueue(connection),
    createCmsReconcileQueue(connection),
    ...config.cms.nodes.map((node) => createCmsWritesQueue(node.name, connection)),
  ];
  try {
    return await Promise.all(
      queues.map(async (queue) => {
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
        return {
          queue: queue.name,
          waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          failed: counts.failed ?? 0,
        };
      }),
    );
  } finally {
    // The queues share the console's connection (BullMQ leaves a connection it was handed open on close).
    await Promise.all(queues.map((q) => q.close().catch(() => {})));
  }
}

/** The Health page: services' readiness, each CMS node's mode and health, queue depths and CDR gaps. */
export async function consoleHealth(options: {
  config: Config;
  db: Database;
  redis: ConsoleRedis;
  selfReady: () => Promise<ServiceReadiness>;
}) {
  const { config, db, redis } = options;
  const services = Promise.all([options.selfReady(), ...serviceReadyzUrls(config).map((s) => probe(s.name, s.url))]);
  const [statusRows, gaps, gapTotals, queues] = await Promise.all([
    db.select().from(cmsNodeStatus),
    db.select().from(cdrGaps).orderBy(desc(cdrGaps.detectedAt)).limit(20),
    db.select({ count: sql<number>`count(*)::int`, missing: sql<number>`coalesce(sum(${cdrGaps.missing}), 0)::int` }).from(cdrGaps),
    queueDepths(config, redis),
  ]);
  const byNode = new Map(statusRows.map((row) => [row.node, row]));
  const names = [...new Set([...config.cms.nodes.map((n) => n.name), ...byNode.keys()])].sort();
  return {
    services: await services,
    nodes: names.map((name) => {
      const row = byNode.get(name);
      return {
        node: name,
        configured: config.cms.nodes.some((n) => n.name === name),
        mode: row?.mode ?? null,
        health: row?.health ?? null,
        detail: row?.detail ?? null,
        updatedAt: toRfc3339(row?.updatedAt ?? null),
      };
    }),
    queues,
    cdrGaps: {
      count: gapTotals[0]?.count ?? 0,
      missing: gapTotals[0]?.missing ?? 0,
      latest: gaps.map((g) => ({ ...g, time: toRfc3339(g.time), detectedAt: toRfc3339(g.detectedAt) })),
    },
  };
}
