import type { BridgeCdr } from '../cdr/pipeline.ts';
import type { Cluster } from '../model/cluster.ts';

/** What the API routes of one bridge need. */
export interface ApiContext {
  bridge: string;
  cluster: Cluster;
  cdr: BridgeCdr;
  pageCap: number;
  clustered: boolean;
  /** Base URL of a bridge's API (for callBridges address). */
  bridgeUrl(name: string): string;
}

export const API = '/api/v1';
