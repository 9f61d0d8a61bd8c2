import { loadConfig } from '@cms/config';
import { ensureDatabase, runMigrations } from '@cms/db';
import { createLogger, scrubConnectionUrl } from '@cms/observability';

const config = loadConfig();
const log = createLogger('migrate', config.log.level);
const { created } = await ensureDatabase(config.database.url);
if (created) log.info({ database: scrubConnectionUrl(config.database.url) }, 'created database');
await runMigrations(config.database.url);
log.info('migrations applied');
