/**
 * Which bridge carries each meeting's roster subscription. Cisco: subscribe to `calls` on every bridge, but to a
 * call's roster on one bridge that hosts it, and move when that bridge deactivates the subscription. One roster
 * lists every participant of the meeting (those on other bridges too), so one subscription per meeting is enough.
 * A meeting keeps its bridge while that bridge's feed is live and still hosts it (no needless resubscribing).
 */
export class RosterPlacement {
  /** Nodes in configuration order: the first live one hosting a meeting takes its roster. */
  readonly #nodes: readonly string[];
  /** meeting key → bridge carrying its roster. */
  readonly #hosts = new Map<string, string>();
  /** `${node}\n${callId}` whose roster CMS deactivated while the call was still listed. */
  readonly #deactivated = new Set<string>();

  constructor(nodes: readonly string[]) {
    this.#nodes = nodes;
  }

  deactivated(node: string, callId: string): void {
    this.#deactivated.add(`${node}\n${callId}`);
  }

  /** The call left the node: a later call with the same id (never, in practice) may be subscribed again. */
  forget(node: string, callId: string): void {
    this.#deactivated.delete(`${node}\n${callId}`);
  }

  /**
   * The roster calls each node must carry, from every node's calls (call id → meeting key) and which feeds are live.
   * Returns node → call ids.
   */
  place(calls: ReadonlyMap<string, ReadonlyMap<string, string>>, live: (node: string) => boolean): Map<string, Set<string>> {
    const instances = new Map<string, Map<string, string>>();
    for (const node of this.#nodes) {
      if (!live(node)) continue;
      for (const [callId, key] of calls.get(node) ?? []) {
        if (this.#deactivated.has(`${node}\n${callId}`)) continue;
        const byNode = instances.get(key) ?? new Map<string, string>();
        instances.set(key, byNode);
        if (!byNode.has(node)) byNode.set(node, callId);
      }
    }
    const wanted = new Map<string, Set<string>>(this.#nodes.map((n) => [n, new Set<string>()]));
    for (const key of [...this.#hosts.keys()]) if (!instances.has(key)) this.#hosts.delete(key);
    for (const [key, byNode] of instances) {
      let host = this.#hosts.get(key);
      if (!host || !byNode.has(host)) {
        host = byNode.keys().next().value as string;
        this.#hosts.set(key, host);
      }
      wanted.get(host)?.add(byNode.get(host) as string);
    }
    return wanted;
  }
}
