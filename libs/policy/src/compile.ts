import { createHash } from 'node:crypto';
import { compileDomainList, type DomainList } from './domain-list.ts';
import type { PolicyConfig } from './types.ts';

/** The policy with its lists parsed once, for classifying legs in a hot loop. */
export interface CompiledPolicy {
  readonly secure: DomainList;
  readonly internal: DomainList;
  readonly countLobby: boolean;
  readonly appUsers: PolicyConfig['appUsers'];
  readonly messages: PolicyConfig['messages'];
  /**
   * What the classification of a participant depends on (the lists, countLobby, appUsers), hashed: a participant's
   * level stored under another fingerprint was decided by another policy and is decided again (not the messages,
   * which do not change who is at which level).
   */
  readonly fingerprint: string;
  /** Entries listed as both secure and internal (internal wins for them); worth a warning at start-up. */
  readonly warnings: readonly string[];
}

/**
 * Bumped when the rules of participants.ts or classify.ts change what they decide, so participant levels stored by
 * an earlier version are decided again (their fingerprint no longer matches).
 */
const PARTICIPANT_RULES_VERSION = 1;

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
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([config.secureDomains, config.internalDomains, config.countLobby, config.appUsers, PARTICIPANT_RULES_VERSION]))
    .digest('hex')
    .slice(0, 32);
  return {
    secure,
    internal,
    countLobby: config.countLobby,
    appUsers: config.appUsers,
    messages: config.messages,
    warnings,
    fingerprint,
  };
}
