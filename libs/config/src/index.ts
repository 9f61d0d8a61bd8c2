export { ENV_BINDINGS } from './env.ts';
export { ConfigError } from './errors.ts';
export { type LoadConfigOptions, loadConfig, requireSetting } from './load.ts';
export { type CmsNodeConfig, type Config, configSchema, type Role, roleSchema, type SecurityMessage } from './schema.ts';
