import type { CmsNodeConfig } from '@cms/config';

/**
 * Which CMS node a batch came from: the node named in the receiver path, else the node whose configured
 * callBridgeId matches the batch's `callBridge` attribute, else the only configured node (unless the batch
 * names a bridge that node is configured not to be), else unknown (null).
 * Records from unknown nodes are stored all the same.
 */
export function createNodeResolver(
  nodes: readonly CmsNodeConfig[],
): (pathNode: string | undefined, callBridge: string | null) => string | null {
  const byCallBridge = new Map<string, string>();
  for (const node of nodes) if (node.callBridgeId) byCallBridge.set(node.callBridgeId.toLowerCase(), node.name);
  const only = nodes.length === 1 ? nodes[0] : undefined;
  return (pathNode, callBridge) => {
    if (pathNode) return pathNode;
    if (callBridge) {
      const mapped = byCallBridge.get(callBridge.toLowerCase());
      if (mapped) return mapped;
      if (only?.callBridgeId) return null;
    }
    return only?.name ?? null;
  };
}
