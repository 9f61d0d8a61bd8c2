import { loadConfig } from '@cms/config';
import { onShutdown } from '@cms/http';
import { createLogger } from '@cms/observability';
import { buildIngest } from './app.ts';

const config = loadConfig();
const log = createLogger('cdr-ingest', config.log.level);
const service = await buildIngest({ config, log });
await service.app.listen({ host: config.ingest.host, port: config.ingest.port });
onShutdown(log, () => service.close());
