import { loadConfig } from '@cms/config';
import { listenOrExit, onShutdown } from '@cms/http';
import { createLogger } from '@cms/observability';
import { buildActuator } from './app.ts';

const config = loadConfig();
const log = createLogger('cms-actuator', config.log.level);
const service = await buildActuator({ config, log, exitWhenWorkerStops: true });
await listenOrExit(service.app, {
  service: 'cms-actuator',
  host: config.actuator.host,
  port: config.actuator.port,
  setting: 'ACTUATOR_PORT',
  log,
  close: () => service.close(),
});
log.info({ nodes: config.cms.nodes.map((n) => ({ name: n.name, maxWritesPerSecond: n.maxWritesPerSecond })) }, 'writing to CMS');
onShutdown(log, () => service.close());
