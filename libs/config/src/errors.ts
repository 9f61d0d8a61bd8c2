/** Invalid or unreadable configuration. `key` names the offending setting so operators can fix it. */
export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`Invalid configuration at "${key}": ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}
