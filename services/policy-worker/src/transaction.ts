import type { Database } from '@cms/db';

/** The transaction a group commit or a recompute runs in: storage and security write in the same one. */
export type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];
