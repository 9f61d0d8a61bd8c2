import { cdrRecords, type Database } from '@cms/db';
import { and, desc, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth.ts';
import { bearerSecurity, errorResponses } from '../schemas.ts';

/** cdr-receiver-db served 20 records per page; its users count on it. */
const PAGE_SIZE = 20;

/**
 * GET /records/:page: cdr-receiver-db's API, unchanged, so its users can switch without changes: pages from 1,
 * newest first, each record as its xmltodict-style element, and `{"records": 0}` past the end.
 * OFFSET paging costs more the deeper the page; new consumers should use GET /records.
 */
export async function recordsCompatRoutes(app: FastifyInstance, options: { db: Database }): Promise<void> {
  const { db } = options;
  app.get<{ Params: { page: number } }>(
    '/records/:page',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'CDRs by page, cdr-receiver-db compatible',
        description:
          '20 records per page, newest first, pages numbered from 1. Each record is the stored <record> element in xmltodict style ' +
          '("@type", "@time", "@recordIndex", "@correlatorIndex", "callLeg": {"@id": ...}). A page past the end answers {"records": 0}.',
        tags: ['records'],
        security: bearerSecurity,
        params: {
          type: 'object',
          required: ['page'],
          properties: { page: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } },
        },
        response: {
          200: {
            description: 'One page of records, or {"records": 0} past the end.',
            type: 'object',
            required: ['records'],
            properties: {
              records: {
                anyOf: [
                  { type: 'array', items: { type: 'object', additionalProperties: true } },
                  { type: 'integer', enum: [0], description: 'cdr-receiver-db answered 0 for a page past the end.' },
                ],
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      // The offset is walked on the primary key alone (an index-only scan), and only the page's own rows are read:
      // reading every skipped record's raw element made a deep page cost its offset in whole rows.
      const page = db
        .select({ id: cdrRecords.id, time: cdrRecords.time })
        .from(cdrRecords)
        .orderBy(desc(cdrRecords.id))
        .limit(PAGE_SIZE)
        .offset((request.params.page - 1) * PAGE_SIZE)
        .as('page');
      const rows = await db
        .select({ raw: cdrRecords.raw })
        .from(page)
        .innerJoin(cdrRecords, and(eq(cdrRecords.id, page.id), eq(cdrRecords.time, page.time)))
        .orderBy(desc(page.id));
      return rows.length === 0 ? { records: 0 } : { records: rows.map((row) => row.raw) };
    },
  );
}
