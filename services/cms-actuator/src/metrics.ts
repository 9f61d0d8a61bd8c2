import { Counter, Gauge, Histogram, type Registry } from '@cms/observability';

/** Write outcomes that alerts count with increase(): a series must exist at 0 before its first event, or that event is missed. */
const ALERTED_OUTCOMES = ['applied', 'held', 'deadLettered'];

/**
 * The actuator's metrics. With `nodes` (the configured CMS nodes), each node's write ceiling is published and the
 * series alerts rely on start at 0.
 */
export function createActuatorMetrics(registry: Registry, nodes: readonly { name: string; maxWritesPerSecond: number }[] = []) {
  const metrics = {
    writes: new Counter({
      name: 'cms_writes_total',
      help: 'CMS write jobs by node and outcome (applied, unchanged, callEnded, retrying, busy, held, deadLettered)',
      labelNames: ['node', 'outcome'],
      registers: [registry],
    }),
    writeSeconds: new Histogram({
      name: 'cms_write_duration_seconds',
      help: 'CMS API time of one write job (GET + PUT), by node',
      labelNames: ['node'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'cms_write_queue_depth',
      help: 'CMS write jobs waiting (incl. delayed retries) per node',
      labelNames: ['node'],
      registers: [registry],
    }),
    nodeHealthy: new Gauge({
      name: 'cms_node_healthy',
      help: '1 while the node accepts our credentials and certificate, 0 while its writes are held',
      labelNames: ['node'],
      registers: [registry],
    }),
    nodeReachable: new Gauge({
      name: 'cms_node_reachable',
      help: '1 when the last request of the health checks reached the node (any HTTP answer), 0 when it did not (refused, timed out)',
      labelNames: ['node'],
      registers: [registry],
    }),
    reconcilePasses: new Counter({
      name: 'cms_reconcile_passes_total',
      help: 'Reconciliation passes by node and outcome (ok, held = node refuses us, failed, aborted = shutdown, unknownNode)',
      labelNames: ['node', 'outcome'],
      registers: [registry],
    }),
    reconcileSeconds: new Histogram({
      name: 'cms_reconcile_duration_seconds',
      help: 'Duration of one reconciliation pass (paced CMS reads + one transaction), by node',
      labelNames: ['node'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    reconcileCalls: new Gauge({
      name: 'cms_reconcile_calls',
      help: 'Active calls the last reconciliation pass found on the node',
      labelNames: ['node'],
      registers: [registry],
    }),
    reconcileCallsEnded: new Counter({
      name: 'cms_reconcile_calls_ended_total',
      help: 'Calls we held as active that CMS no longer knew (their CDRs were lost): marked ended by reconciliation',
      labelNames: ['node'],
      registers: [registry],
    }),
    reconcileReapplied: new Counter({
      name: 'cms_reconcile_messages_reapplied_total',
      help: 'Desired messages CMS did not show (bridge restart, cleared by someone) queued again by reconciliation',
      labelNames: ['node'],
      registers: [registry],
    }),
    reads: new Counter({
      name: 'cms_reads_total',
      help: 'CMS API reads of reconciliation and call placement (paced under actuator.readsPerSecond), by node',
      labelNames: ['node'],
      registers: [registry],
    }),
    sweeps: new Counter({
      name: 'cms_sweeps_total',
      help: 'Sweeps for pending desired state without a write job and for calls of unknown node',
      registers: [registry],
    }),
    sweepEnqueued: new Counter({
      name: 'cms_sweep_enqueued_total',
      help: 'Write jobs queued by the sweep for desired state that had none (a producer crashed after its commit)',
      labelNames: ['node'],
      registers: [registry],
    }),
    placementLookups: new Counter({
      name: 'cms_placement_lookups_total',
      help: 'GET /api/v1/calls/<id> asked of a node for a call of unknown node, by node and outcome (found, absent, failed)',
      labelNames: ['node', 'outcome'],
      registers: [registry],
    }),
    nodeMode: new Gauge({
      name: 'cms_actuator_node_mode',
      help: "1 for the way each node's live state is followed (events = the CMS events feed, polling = paced API reads only, unreachable), 0 for the others",
      labelNames: ['node', 'mode'],
      registers: [registry],
    }),
    eventsConnects: new Counter({
      name: 'cms_events_connects_total',
      help: "Times a node's events feed (re)connected and its calls subscription became active, by node",
      labelNames: ['node'],
      registers: [registry],
    }),
    eventsRosterUpdates: new Counter({
      name: 'cms_events_roster_updates_total',
      help: 'Participant updates (add, update, remove) received over the events feed and stored, by node',
      labelNames: ['node'],
      registers: [registry],
    }),
    writeCeiling: new Gauge({
      name: 'cms_write_ceiling_per_second',
      help: "The node's configured maxWritesPerSecond: applied writes per second divided by this is the share of the ceiling in use",
      labelNames: ['node'],
      registers: [registry],
    }),
  };
  for (const node of nodes) {
    metrics.writeCeiling.set({ node: node.name }, node.maxWritesPerSecond);
    for (const outcome of ALERTED_OUTCOMES) metrics.writes.inc({ node: node.name, outcome }, 0);
  }
  return metrics;
}

export type ActuatorMetrics = ReturnType<typeof createActuatorMetrics>;
