import { cmsWrites, type Database } from '@cms/db';
import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import { toRfc3339 } from '../time.ts';

export interface CmsWritesQuery {
  limit: number;
  before?: number;
  node?: string;
  status?: string;
}

/**
 * The latest CMS writes across all calls (the API lists them per call only), newest first, keyset-paged by id:
 * the Activity page shows them beside the operator actions.
 */
export async function latestCmsWrites(db: Database, q: CmsWritesQuery) {
  const conditions: SQL[] = [];
  if (q.before !== undefined) conditions.push(lt(cmsWrites.id, q.before));
  if (q.node) conditions.push(eq(cmsWrites.node, q.node));
  if (q.status) conditions.push(eq(cmsWrites.status, q.status as (typeof cmsWrites.$inferSelect)['status']));
  const rows = await db
    .select()
    .from(cmsWrites)
    .where(and(...conditions))
    .orderBy(desc(cmsWrites.id))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit).map((row) => ({ ...row, at: toRfc3339(row.at) }));
  return { writes: page, nextBefore: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null };
}
