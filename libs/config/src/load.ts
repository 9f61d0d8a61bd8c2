import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ENV_BINDINGS, type EnvBinding } from './env.ts';
import { ConfigError } from './errors.ts';
import { type Config, configSchema } from './schema.ts';
import { knownKeysAt, nearestKey } from './suggest.ts';

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

/**
 * Lists whose entries may name a file holding their secret (`passwordFile` / `tokenFile`) instead of the secret. The
 * file keys are resolved before validation, so the schema never sees them; they are still known keys when a typo
 * (`passwordfile`) looks for its nearest match.
 */
const SECRET_FILE_KEYS = [
  { list: ['cms', 'nodes'], fileKey: 'passwordFile', key: 'password' },
  { list: ['api', 'tokens'], fileKey: 'tokenFile', key: 'token' },
] as const;

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `passwordFile` / `tokenFile` entries in the YAML are resolved into the values they point at. */
function resolveSecretFiles(tree: Tree): void {
  for (const { list, fileKey, key } of SECRET_FILE_KEYS) {
    const parent = tree[list[0]];
    const entries = isTree(parent) && Array.isArray(parent[list[1]]) ? (parent[list[1]] as unknown[]) : [];
    entries.forEach((entry, i) => {
      // A malformed entry is left for the schema to name.
      if (!isTree(entry)) return;
      if (typeof entry[fileKey] === 'string' && entry[key] === undefined) {
        entry[key] = readSecretFile(`${list.join('.')}[${i}].${fileKey}`, entry[fileKey]);
      }
      delete entry[fileKey];
    });
  }
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

function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
}

/** The keys allowed in the object at `path`, including the secret-file keys resolved before validation. */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  const keys = knownKeysAt(configSchema, path);
  for (const { list, fileKey } of SECRET_FILE_KEYS) {
    if (path.length === 3 && path[0] === list[0] && path[1] === list[1] && typeof path[2] === 'number') keys.push(fileKey);
  }
  return keys;
}

/** One error for the unknown keys: the first named with its nearest known key, the others listed after it. */
function unknownKeyError(issues: z.core.$ZodIssueUnrecognizedKeys[]): ConfigError {
  const unknown = issues.flatMap((issue) => issue.keys.map((key) => ({ parent: issue.path, key })));
  const [first, ...rest] = unknown as [(typeof unknown)[number], ...typeof unknown];
  const allowed = allowedKeys(first.parent);
  const nearest = nearestKey(first.key, allowed);
  let message = nearest
    ? `unknown key; did you mean "${keyPath([...first.parent, nearest])}"?`
    : `unknown key; the keys allowed ${first.parent.length ? `in "${keyPath(first.parent)}"` : 'at the top level'} are ${allowed.join(', ')}`;
  if (rest.length) message += ` (also unknown: ${rest.map((u) => keyPath([...u.parent, u.key])).join(', ')})`;
  return new ConfigError(keyPath([...first.parent, first.key]), message);
}

function formatIssues(issues: z.core.$ZodIssue[]): ConfigError {
  // Unknown keys first: a misspelt key is usually also why a required one is missing (`passwrd` → no `password`),
  // and the typo is the thing to fix.
  const unknown = issues.filter((issue): issue is z.core.$ZodIssueUnrecognizedKeys => issue.code === 'unrecognized_keys');
  if (unknown.length) return unknownKeyError(unknown);
  const issue = issues[0] as z.core.$ZodIssue;
  return new ConfigError(keyPath(issue.path) || '(root)', issue.message);
}

/**
 * Loads configuration: the YAML file named by CONFIG_FILE (optional), then environment overrides,
 * then explicit overrides. Throws ConfigError naming the first invalid key; an unknown key (a typo) is invalid too.
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
  if (!result.success) throw formatIssues(result.error.issues);
  return result.data;
}

/** Fails start-up with a ConfigError when a service needs a secret that was not configured. */
export function requireSetting<T>(value: T | undefined, key: string, hint: string): T {
  if (value === undefined || value === null || value === '') throw new ConfigError(key, `is required: ${hint}`);
  return value;
}
