import { loadConfig } from '@cms/config';
import { listenOrExit, onShutdown } from '@cms/http';
import { createLogger } from '@cms/observability';
import { buildIngest } from './app.ts';

const config = loadConfig();
const log = createLogger('cdr-ingest', config.log.level);
const service = await buildIngest({ config, log });
await listenOrExit(service.app, {
  service: 'cdr-ingest',
  host: config.ingest.host,
  port: config.ingest.port,
  setting: 'INGEST_PORT',
  log,
  close: () => service.close(),
});
await listenOrExit(service.metricsApp, {
  service: 'cdr-ingest',
  host: config.ingest.host,
  port: config.ingest.metricsPort,
  setting: 'INGEST_METRICS_PORT',
  log,
  close: () => service.close(),
});
onShutdown(log, () => service.close());
