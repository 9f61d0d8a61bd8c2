import { loadConfig } from '@cms/config';
import { createDatabase } from '@cms/db';
import { listenOrExit, onShutdown } from '@cms/http';
import { createLogger } from '@cms/observability';
import { buildRecordsApi } from './app.ts';

const config = loadConfig();
const log = createLogger('records-api', config.log.level);
const db = createDatabase(config.database.url, { applicationName: 'records-api' });
const readDb = config.database.readUrl ? createDatabase(config.database.readUrl, { applicationName: 'records-api-read' }) : undefined;
const { app, metricsApp, close: closeApi } = await buildRecordsApi({ config, db, readDb, log });
const close = async () => {
  await closeApi();
  await db.$client.end();
  await readDb?.$client.end();
};
await listenOrExit(app, { service: 'records-api', host: config.api.host, port: config.api.port, setting: 'API_PORT', log, close });
await listenOrExit(metricsApp, {
  service: 'records-api',
  host: config.api.host,
  port: config.api.metricsPort,
  setting: 'API_METRICS_PORT',
  log,
  close,
});
onShutdown(log, close);
