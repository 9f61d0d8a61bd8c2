/**
 * The real system (cdr-ingest, policy-worker, cms-actuator, records-api as processes) on a simulated two-bridge
 * cluster, with operator and viewer tokens, for the call-control and lobby end-to-end tests and the control benchmark.
 */
import type { Simulator, SimulatorOptions } from '@cms/cms-sim';
import { eventually } from './infra.ts';
import { type ServiceName, type Stack, startStack } from './stack.ts';
import { bridgesWithCredentials, cmsNodesOf, sendCdrsToStack, startStackSimulator, writeConfigFile } from './stack-setup.ts';

const OPERATOR_TOKEN = 'cc-operator-token-0123456789abcdef';
export const VIEWER_TOKEN = 'cc-viewer-token-0123456789abcdef';

export interface ControlStack {
  sim: Simulator;
  stack: Stack;
  /** A request to the records API as the operator (or `token`); JSON in and out. */
  api(method: string, path: string, body?: unknown, options?: { token?: string; headers?: Record<string, string> }): Promise<ApiAnswer>;
  /** Waits until the action is no longer queued, and returns it. */
  outcome(id: number): Promise<ActionAnswer>;
  /** The last lines the services logged, for failure messages. */
  logs(...names: ServiceName[]): string;
}

interface ApiAnswer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test answers are checked field by field
  body: any;
}

interface ActionAnswer {
  id: number;
  status: 'queued' | 'applied' | 'failed';
  failureDetails: { reason: string; parameter: string | null } | null;
  httpStatus: number | null;
  result: Record<string, unknown> | null;
  steps: { node: string; callId: string; status: string; writes: number; toFirstWriteMs: number | null }[];
}

export async function startControlStack(
  options: { maxWritesPerSecond?: number; sim?: Partial<SimulatorOptions>; tuning?: Record<string, string> } = {},
): Promise<ControlStack> {
  const maxWritesPerSecond = options.maxWritesPerSecond ?? 10;
  const sim = await startStackSimulator({
    bridges: bridgesWithCredentials(['cms-1', 'cms-2']),
    seed: 20261207,
    faults: { maxWritesPerSecond },
    dialOutAnswerMs: 200,
    ...options.sim,
  });
  const { configFile } = writeConfigFile('call-control-', {
    cms: { nodes: cmsNodesOf(sim, { maxWritesPerSecond }) },
    api: {
      tokens: [
        { name: 'duty-operator', token: OPERATOR_TOKEN, role: 'operator' },
        { name: 'wallboard', token: VIEWER_TOKEN, role: 'viewer' },
      ],
    },
    policy: { secureDomains: ['secure.example'], internalDomains: ['corp.example'] },
  });
  const stack = await startStack({
    services: ['cdr-ingest', 'policy-worker', 'cms-actuator', 'records-api'],
    env: { CONFIG_FILE: configFile, POLICY_WORKER_LOCK_MS: '2000', ACTUATOR_LOCK_MS: '2000', ...options.tuning },
  });
  sendCdrsToStack(sim, stack);

  const api: ControlStack['api'] = async (method, urlPath, body, requestOptions = {}) => {
    const res = await fetch(`${stack.url('records-api')}/api/v1${urlPath}`, {
      method,
      headers: {
        authorization: `Bearer ${requestOptions.token ?? OPERATOR_TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...requestOptions.headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  };
  const logs = (...names: ServiceName[]) =>
    names.map((name) => `--- ${name}\n${(stack.services[name]?.output.join('') ?? '').slice(-3000)}`).join('\n');
  const outcome = (id: number) =>
    eventually(
      async () => {
        const res = await api('GET', `/actions/${id}`, undefined, { token: VIEWER_TOKEN });
        return res.body.status !== 'queued' && (res.body as ActionAnswer);
      },
      { what: `action ${id} to finish`, timeoutMs: 20_000, intervalMs: 50 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs('records-api', 'cms-actuator')}`);
    });
  return { sim, stack, api, outcome, logs };
}

/** Waits until the records API knows a call (its callStart arrived) and its legs, by CDRs. */
export async function knownCall(control: ControlStack, callId: string, legIds: string[]): Promise<void> {
  await eventually(
    async () => {
      const res = await control.api('GET', `/calls/${callId}`, undefined, { token: VIEWER_TOKEN });
      if (res.status !== 200 || res.body.node === null) return false;
      const known = new Set((res.body.legs as { id: string }[]).map((leg) => leg.id));
      return legIds.every((id) => known.has(id));
    },
    { what: `call ${callId} with legs ${legIds.join(', ')} in the records API`, timeoutMs: 20_000, intervalMs: 50 },
  );
}
