import { z } from 'zod';

// Defaults live here, next to the keys they belong to; README's configuration table mirrors this file.
// Every object is strict: a misspelt key (`secureDomain`) would otherwise be dropped and its default used in silence,
// so loadConfig turns an unknown key into a ConfigError that names the nearest known one.

const port = z.coerce.number().int().min(0).max(65535);

/** A Redis Sentinel's address: `{ host, port }` or `host:port` (the form REDIS_SENTINELS gives). */
const sentinelSchema = z.union(
  [
    z.strictObject({ host: z.string().min(1), port: port.refine((p) => p > 0, 'a sentinel port') }),
    z
      .string()
      .regex(/^[^\s:]+:\d{1,5}$/, 'a sentinel as host:port')
      .transform((s) => {
        const at = s.lastIndexOf(':');
        return { host: s.slice(0, at), port: Number(s.slice(at + 1)) };
      }),
  ],
  { error: 'a sentinel is "host:port" or { host, port }' },
);
const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'node names use letters, digits, "_", "." and "-" (max 63)');

export const roleSchema = z.enum(['viewer', 'operator', 'admin']);
export type Role = z.infer<typeof roleSchema>;

const apiTokenSchema = z.strictObject({
  name: z.string().min(1),
  token: z.string().min(16, 'tokens must be at least 16 characters'),
  role: roleSchema,
});

const cmsNodeSchema = z.strictObject({
  name: nodeName,
  url: z.url({ protocol: /^https?$/ }),
  username: z.string().min(1),
  password: z.string().min(1),
  callBridgeId: z.string().min(1).optional(),
  caFile: z.string().min(1).optional(),
  maxWritesPerSecond: z.number().positive().default(10),
});
export type CmsNodeConfig = z.infer<typeof cmsNodeSchema>;

const messageSchema = z.strictObject({
  text: z.string(),
  position: z.enum(['top', 'middle', 'bottom']).default('bottom'),
  duration: z.union([z.literal('permanent'), z.number().int().positive()]).default('permanent'),
});
export type SecurityMessage = z.infer<typeof messageSchema>;

const defaultMessage = (level: number) => ({
  text: `Security Level ${level}`,
  position: 'bottom' as const,
  duration: 'permanent' as const,
});

export const configSchema = z.strictObject({
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .default({ level: 'info' }),
  redis: z
    .strictObject({
      /** The Redis to use; with `sentinels`, only its password, user name and database number count. */
      url: z.string().min(1).default('redis://127.0.0.1:6379'),
      /**
       * Redis Sentinel: ask these sentinels for the current master of `sentinelName` (and again after each
       * disconnect, so a failover is followed). `host:port` strings (REDIS_SENTINELS is a comma-separated list) or
       * `{ host, port }`. Empty: connect to `url`.
       */
      sentinels: z.array(sentinelSchema).default([]),
      /** The master's name in the sentinels' configuration (`sentinel monitor <name> …`). */
      sentinelName: z.string().min(1).default('mymaster'),
      /** The sentinels' own password (`requirepass` of the sentinels), when they have one. */
      sentinelPassword: z.string().min(1).optional(),
    })
    .prefault({}),
  database: z
    .strictObject({
      url: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/cms_cdr'),
      /**
       * A read-only copy (a streaming replica) for records-api's read routes: records, calls, meetings. Unset: they
       * read `url`. Operator actions, their audit and the console's own reads stay on `url`, which they write.
       */
      readUrl: z.string().min(1).optional(),
    })
    .prefault({}),
  queue: z
    .strictObject({
      /** BullMQ key prefix; lets several stacks (or test runs) share one Redis. */
      prefix: z.string().min(1).default('cms'),
    })
    .prefault({}),
  ingest: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port.default(8444),
      /**
       * GET /metrics (with /healthz and /readyz) on a port of its own, for Prometheus on the internal network: the
       * main port is published for CMS, and the metrics must not be published with it.
       */
      metricsPort: port.default(9100),
      /** Also serve GET /metrics on the main port (404 there otherwise). */
      publicMetrics: z.boolean().default(false),
      /** Shared secret CMS sends as ?token= (or Authorization: Bearer). Required. */
      token: z.string().min(16, 'the ingest token must be at least 16 characters').optional(),
      bodyLimitBytes: z
        .number()
        .int()
        .positive()
        .default(5 * 1024 * 1024),
      /** Waiting batches above which ingest answers 503 so CMS buffers and re-sends instead of us running Redis out of memory. */
      maxBacklog: z.number().int().positive().default(200_000),
    })
    .prefault({}),
  api: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port.default(8080),
      /** GET /metrics (with /healthz and /readyz) on a port of its own; the main port is published to users. */
      metricsPort: port.default(9103),
      /** Also serve GET /metrics on the main port (404 there otherwise). */
      publicMetrics: z.boolean().default(false),
      /** One admin token from API_TOKEN. */
      token: z.string().min(16, 'the API token must be at least 16 characters').optional(),
      tokens: z.array(apiTokenSchema).default([]),
    })
    .prefault({}),
  policyWorker: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port.default(9101),
      /**
       * Queue jobs taken at once; their batches are written together in group commits. The jobs in hand bound the
       * size of a group: measured, 256 lets Postgres keep pace with ingest on the 2-core reference machine.
       */
      concurrency: z.number().int().positive().default(256),
      /** Largest number of records one group commit writes. */
      maxRecordsPerCommit: z.number().int().positive().default(2000),
      /** How long a batch stays locked to a worker that stopped answering (crash, kill -9) before another takes it. */
      lockDurationMs: z.number().int().min(1000).default(30_000),
    })
    .prefault({}),
  actuator: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port.default(9102),
      /**
       * Seconds between periodic reconciliation passes per CMS node (re-reading its active calls); 0 = none (passes
       * still run at start-up, after a CDR gap or a Call Bridge restart, and when the node accepts our credentials again).
       */
      reconcileIntervalSeconds: z.number().int().min(0).default(300),
      /** Ceiling on CMS API reads (reconciliation, call placement) per node, evenly spaced, shared by every replica. */
      readsPerSecond: z.number().positive().default(20),
      /**
       * Least time between two message writes to one call: a change arriving sooner waits, and later changes fold
       * into it, so a burst of joins costs a leading and a trailing write and the text does not flicker. A change to a
       * worse level than the call shows does not wait (a level better than the truth is not held on screen for it).
       */
      messageMinIntervalMs: z.number().int().min(0).default(200),
      /**
       * Places of each node's write ceiling that message writes leave free for operator actions, so an action finds
       * a place at once even while security messages keep the ceiling full (without it, an action waits for the
       * window to turn: up to a second). Never the ceiling's only place: at a ceiling of one write per window,
       * messages keep it and an action goes next.
       */
      interactiveReservedWrites: z.number().int().min(0).default(1),
      /** How long a write job stays locked to a replica that stopped answering (crash) before another takes it. */
      lockDurationMs: z.number().int().min(1000).default(30_000),
    })
    .prefault({}),
  console: z
    .strictObject({
      /**
       * Where the Health page asks each service's /readyz (its base URL, e.g. http://policy-worker:9101 under docker
       * compose). Unset: the service's configured host and health port (ingest.metricsPort, policyWorker.port,
       * actuator.port) on records-api's own host, a wildcard bind address meaning the loopback.
       */
      serviceUrls: z
        .strictObject({
          cdrIngest: z.url({ protocol: /^https?$/ }).optional(),
          policyWorker: z.url({ protocol: /^https?$/ }).optional(),
          cmsActuator: z.url({ protocol: /^https?$/ }).optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  storage: z
    .strictObject({
      /**
       * Days records (and level changes, CMS write outcomes) are kept: the policy worker drops each monthly partition
       * once all of it is older than this. Whole partitions go, never row by row.
       */
      retentionDays: z.number().int().positive().default(400),
    })
    .prefault({}),
  cms: z
    .strictObject({
      nodes: z.array(cmsNodeSchema).default([]),
      /** The CMS events feed (WebSocket /events/v1, CMS 2.4+): each node's live roster within about a second. */
      events: z
        .strictObject({
          /** false: live state comes from paced polling (reconciliation) alone. */
          enabled: z.boolean().default(true),
          /** A new auth token is asked for when the one in hand is this old (CMS tokens expire; only new connections use them). */
          tokenRefreshSeconds: z.number().int().min(1).default(300),
          /** Longest pause between two connection attempts (capped, jittered exponential back-off). */
          reconnectMaxSeconds: z.number().int().min(1).default(30),
        })
        .prefault({}),
    })
    .prefault({}),
  policy: z
    .strictObject({
      secureDomains: z.array(z.string().min(1)).default([]),
      internalDomains: z.array(z.string().min(1)).default([]),
      countLobby: z.boolean().default(false),
      appUsers: z.enum(['guest', 'byDomain']).default('guest'),
      messages: z
        .strictObject({
          1: messageSchema.default(defaultMessage(1)),
          2: messageSchema.default(defaultMessage(2)),
          3: messageSchema.default(defaultMessage(3)),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
