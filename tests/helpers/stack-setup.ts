import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Simulator, type SimulatorOptions, startSimulator } from '@cms/cms-sim';
import { stringify } from 'yaml';
import { onTestFileEnd } from './infra.ts';
import type { Stack } from './stack.ts';

/**
 * What the end-to-end tests set up around startStack (stack.ts) alike: the CMS simulator, the services' config file
 * naming its bridges, and the bridges' CDRs sent to the stack's cdr-ingest.
 */

/** Bridges named `names`, each with API credentials of its own (`api-<name>`, `<secret>-<n>`). */
export function bridgesWithCredentials(names: readonly string[], secret = 'sim-secret'): NonNullable<SimulatorOptions['bridges']> {
  return names.map((name, i) => ({ name, username: `api-${name}`, password: `${secret}-${i + 1}` }));
}

/** An in-process simulator whose bridges flush and resend CDRs quickly; stopped when the test file ends. */
export async function startStackSimulator(options: Partial<SimulatorOptions>): Promise<Simulator> {
  const sim = await startSimulator({
    cdr: { flushDelayMs: 5, resendInitialMs: 50, resendMaxMs: 500 },
    controlPort: null,
    ...options,
  });
  onTestFileEnd(() => sim.stop());
  return sim;
}

/** `cms.nodes` for every bridge of `sim`, with the bridge's credentials and `extra` on each node. */
export function cmsNodesOf(sim: Simulator, extra: Record<string, unknown> = {}) {
  return sim.bridges.map((b) => ({ name: b.name, url: b.url, username: b.username, password: b.password, ...extra }));
}

/** Writes `config` as YAML into a temporary folder (removed when the test file ends); the file is the services' CONFIG_FILE. */
export function writeConfigFile(folderPrefix: string, config: unknown): { dir: string; configFile: string } {
  const dir = mkdtempSync(path.join(tmpdir(), folderPrefix));
  onTestFileEnd(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(configFile, stringify(config));
  return { dir, configFile };
}

/** Makes every bridge of `sim` post its CDRs to the stack's cdr-ingest. */
export function sendCdrsToStack(sim: Simulator, stack: Stack): void {
  sim.setCdrReceivers([`${stack.url('cdr-ingest')}/cdr/{bridge}?token=${stack.ingestToken}`]);
}
