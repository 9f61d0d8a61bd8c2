import type { Simulator } from '@cms/cms-sim';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { eventually, onTestFileEnd } from '../helpers/infra.ts';
import { type ServiceName, type Stack, startStack } from '../helpers/stack.ts';
import { cmsNodesOf, sendCdrsToStack, startStackSimulator, writeConfigFile } from '../helpers/stack-setup.ts';

export const SECURE = 'secure.example.com';
export const INTERNAL = 'example.com';
export const VIEWER_TOKEN = 'console-viewer-token-0123456789';
export const OPERATOR_TOKEN = 'console-operator-token-0123456789';

/** Starting four services, the simulator and chromium takes over a minute on a loaded 2-core machine. */
export const STACK_START_MS = 240_000;

export const WIDE = { width: 1280, height: 860 };
export const NARROW = { width: 390, height: 844 };

export interface ConsoleStack {
  sim: Simulator;
  stack: Stack;
  baseUrl: string;
  browser: Browser;
  /** A fresh browser context (its own cookies) at `viewport`. */
  context(viewport?: { width: number; height: number }): Promise<BrowserContext>;
}

const SERVICES: ServiceName[] = ['cdr-ingest', 'policy-worker', 'cms-actuator', 'records-api'];

/**
 * stack.start gives a service 20 s to become ready; on a loaded 2-core machine start-up can take longer. A
 * service still starting (not exited) is given more time before the test gives up on it.
 */
async function startPatiently(stack: Stack, name: ServiceName, env: Record<string, string>, waitFor: 'ready' | 'alive'): Promise<void> {
  try {
    await stack.start(name, env, { waitFor });
  } catch (err) {
    const running = stack.services[name];
    if (!running || running.process.exitCode !== null || running.process.signalCode !== null) throw err;
    const probe = waitFor === 'ready' ? 'readyz' : 'healthz';
    await eventually(async () => (await fetch(`${running.url}/${probe}`)).ok, {
      what: `${name} ${waitFor}`,
      timeoutMs: 90_000,
      intervalMs: 250,
    });
  }
}

interface ConsoleStackOptions {
  seed?: number;
  /**
   * Nodes configured with a password their bridge does not know: CMS answers 401, the actuator holds their writes
   * (and is not ready, so it is only waited for until it is alive).
   */
  refusedNodes?: string[];
  /** Extra environment for some services, from the stack (its ports) before they start. */
  serviceEnv?: (stack: Stack) => Partial<Record<ServiceName, Record<string, string>>>;
}

export async function startConsoleStack(options: ConsoleStackOptions = {}): Promise<ConsoleStack> {
  const sim = await startStackSimulator({ bridges: [{ name: 'cms-1' }, { name: 'cms-2' }], seed: options.seed ?? 20261207 });
  const { configFile } = writeConfigFile('console-browser-', {
    api: {
      tokens: [
        { name: 'night-desk', token: VIEWER_TOKEN, role: 'viewer' },
        { name: 'ops-alice', token: OPERATOR_TOKEN, role: 'operator' },
      ],
    },
    cms: {
      nodes: cmsNodesOf(sim).map((node) => ({
        ...node,
        password: options.refusedNodes?.includes(node.name) ? `not-${node.password}` : node.password,
      })),
    },
    policy: { secureDomains: [SECURE], internalDomains: [INTERNAL] },
  });
  const stack = await startStack({
    services: [],
    env: { CONFIG_FILE: configFile, POLICY_WORKER_LOCK_MS: '2000', ACTUATOR_LOCK_MS: '2000' },
  });
  const serviceEnv = options.serviceEnv?.(stack) ?? {};
  for (const name of SERVICES) {
    const waitFor = name === 'cms-actuator' && options.refusedNodes?.length ? 'alive' : 'ready';
    await startPatiently(stack, name, serviceEnv[name] ?? {}, waitFor);
  }
  sendCdrsToStack(sim, stack);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  onTestFileEnd(() => browser.close());
  const baseUrl = stack.url('records-api');
  return {
    sim,
    stack,
    baseUrl,
    browser,
    context: (viewport = WIDE) => browser.newContext({ viewport, baseURL: baseUrl }),
  };
}

/** Signs in through the form, as a person would. */
export async function signIn(page: Page, token: string, next = '/'): Promise<void> {
  await page.goto(`/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === new URL(next, 'http://x').pathname);
}
