import { compileDomainList, type DomainList } from './domain-list.ts';
import type { PolicyConfig } from './types.ts';

/** The policy with its lists parsed once, for classifying legs in a hot loop. */
export interface CompiledPolicy {
  readonly secure: DomainList;
  readonly internal: DomainList;
  readonly countLobby: boolean;
  readonly appUsers: PolicyConfig['appUsers'];
  readonly messages: PolicyConfig['messages'];
  /** Entries listed as both secure and internal (internal wins for them); worth a warning at start-up. */
  readonly warnings: readonly string[];
}

/** Parses the lists of a `policy` config block; throws ConfigError naming the first bad entry. */
export function compilePolicy(config: PolicyConfig): CompiledPolicy {
  const secure = compileDomainList(config.secureDomains, 'policy.secureDomains');
  const internal = compileDomainList(config.internalDomains, 'policy.internalDomains');
  const warnings: string[] = [];
  for (const [key, entry] of secure.keys) {
    const other = internal.keys.get(key);
    if (other !== undefined) {
      warnings.push(`"${entry}" is in policy.secureDomains and "${other}" in policy.internalDomains: it counts as internal (level 2)`);
    }
  }
  return { secure, internal, countLobby: config.countLobby, appUsers: config.appUsers, messages: config.messages, warnings };
}
