import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ENV_BINDINGS, type EnvBinding } from './env.ts';
import { ConfigError } from './errors.ts';
import { type Config, configSchema } from './schema.ts';

type Env = Record<string, string | undefined>;
type Tree = Record<string, unknown>;

export interface LoadConfigOptions {
  env?: Env;
  /** Overrides applied last; used by tests and tools that build a service in-process. */
  overrides?: Tree;
}

function readSecretFile(key: string, file: string): string {
  try {
    // Secret files conventionally end with a newline that is not part of the secret.
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError(key, `cannot read secret file ${file}: ${(err as Error).message}`);
  }
}

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Tree;
  }
  node[path[path.length - 1] as string] = value;
}

function envValue(binding: EnvBinding, raw: string): unknown {
  switch (binding.kind) {
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(binding.env, `expected a whole number, got "${raw}"`);
      return Number(raw.trim());
    }
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    default:
      return raw;
  }
}

function applyEnv(tree: Tree, env: Env): void {
  for (const binding of ENV_BINDINGS) {
    const fileVar = `${binding.env}_FILE`;
    let raw = env[binding.env];
    if (binding.secret && env[fileVar]) raw = readSecretFile(fileVar, env[fileVar]);
    if (raw === undefined || raw === '') continue;
    setPath(tree, binding.path, envValue(binding, raw));
  }
}

/** `passwordFile` / `tokenFile` entries in the YAML are resolved into the values they point at. */
function resolveSecretFiles(tree: Tree): void {
  const cms = tree.cms as Tree | undefined;
  const nodes = Array.isArray(cms?.nodes) ? (cms.nodes as Tree[]) : [];
  nodes.forEach((node, i) => {
    if (typeof node.passwordFile === 'string' && node.password === undefined) {
      node.password = readSecretFile(`cms.nodes[${i}].passwordFile`, node.passwordFile);
    }
    delete node.passwordFile;
  });
  const api = tree.api as Tree | undefined;
  const tokens = Array.isArray(api?.tokens) ? (api.tokens as Tree[]) : [];
  tokens.forEach((token, i) => {
    if (typeof token.tokenFile === 'string' && token.token === undefined) {
      token.token = readSecretFile(`api.tokens[${i}].tokenFile`, token.tokenFile);
    }
    delete token.tokenFile;
  });
}

function mergeDeep(target: Tree, source: Tree): Tree {
  for (const [k, v] of Object.entries(source)) {
    const cur = target[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      mergeDeep(cur as Tree, v as Tree);
    } else {
      target[k] = v;
    }
  }
  return target;
}

function formatIssue(issue: z.core.$ZodIssue): ConfigError {
  const key = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
  return new ConfigError(key || '(root)', issue.message);
}

/**
 * Loads configuration: the YAML file named by CONFIG_FILE (optional), then environment overrides,
 * then explicit overrides. Throws ConfigError naming the first invalid key.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  let tree: Tree = {};
  const file = env.CONFIG_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError('CONFIG_FILE', `cannot read ${file}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (err) {
      throw new ConfigError('CONFIG_FILE', `${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('CONFIG_FILE', `${file} must hold a YAML mapping`);
      tree = parsed as Tree;
    }
  }
  resolveSecretFiles(tree);
  applyEnv(tree, env);
  if (options.overrides) mergeDeep(tree, structuredClone(options.overrides));
  const result = configSchema.safeParse(tree);
  if (!result.success) throw formatIssue(result.error.issues[0] as z.core.$ZodIssue);
  return result.data;
}

/** Fails start-up with a ConfigError when a service needs a secret that was not configured. */
export function requireSetting<T>(value: T | undefined, key: string, hint: string): T {
  if (value === undefined || value === null || value === '') throw new ConfigError(key, `is required: ${hint}`);
  return value;
}
