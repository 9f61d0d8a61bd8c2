import { loadConfig } from '@cms/config';
import { onShutdown } from '@cms/http';
import { createLogger } from '@cms/observability';
import { buildPolicyWorker } from './worker.ts';

const config = loadConfig();
const log = createLogger('policy-worker', config.log.level);
const service = await buildPolicyWorker({ config, log });
await service.app.listen({ host: config.policyWorker.host, port: config.policyWorker.port });
log.info({ concurrency: config.policyWorker.concurrency }, 'taking CDR batches');
onShutdown(log, () => service.close());
