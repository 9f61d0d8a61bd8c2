import { loadConfig } from '@cms/config';
import { listenOrExit, onShutdown } from '@cms/http';
import { createLogger } from '@cms/observability';
import { buildPolicyWorker } from './app.ts';

const config = loadConfig();
const log = createLogger('policy-worker', config.log.level);
const service = await buildPolicyWorker({ config, log, exitWhenWorkerStops: true });
await listenOrExit(service.app, {
  service: 'policy-worker',
  host: config.policyWorker.host,
  port: config.policyWorker.port,
  setting: 'POLICY_WORKER_PORT',
  log,
  close: () => service.close(),
});
log.info({ concurrency: config.policyWorker.concurrency }, 'taking CDR batches');
onShutdown(log, () => service.close());
