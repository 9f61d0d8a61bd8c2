import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readApi } from './live.ts';

/** Most rows one export holds: a larger one should page the API itself. */
const CSV_MAX_ROWS = 100_000;

const COLUMNS = [
  'id',
  'time',
  'type',
  'node',
  'session',
  'callBridge',
  'recordIndex',
  'correlatorIndex',
  'numPreceedingRecordsMissing',
  'callId',
  'callLegId',
  'callCorrelator',
  'receivedAt',
] as const;

/** The filters of GET /api/v1/records the export passes on (paging is its own). */
const FILTERS = ['type', 'callId', 'callLegId', 'callCorrelator', 'session', 'node', 'from', 'to', 'order'];

/** RFC 4180 field; a leading =, +, - or @ is prefixed so a spreadsheet does not run it as a formula. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(record: Record<string, unknown>): string {
  const own = record.call ?? record.callLeg ?? record.recording ?? record.streaming ?? record.elements ?? null;
  return `${[...COLUMNS.map((c) => csvField(record[c])), csvField(own)].join(',')}\r\n`;
}

/**
 * GET /console/records.csv?<the records filters>: every record the filter selects, as CSV, read page by page
 * from GET /api/v1/records as the signed-in user. A refused filter answers the API's own problem.
 */
export async function exportRecordsCsv(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const query = request.query as Record<string, unknown>;
  const params = new URLSearchParams({ limit: '500' });
  for (const name of FILTERS) {
    const value = query[name];
    if (typeof value === 'string' && value !== '') params.set(name, value);
  }
  // The first page is read before answering, so a bad filter is a 400 with the API's reason, not a broken file.
  let answer = await readApi(app, request, `/api/v1/records?${params}`);
  if (!answer.ok) {
    return reply
      .code(answer.status)
      .type('application/problem+json')
      .send({ type: 'about:blank', title: 'Export refused', status: answer.status, detail: answer.detail });
  }
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': `attachment; filename="cdr-records-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '')}.csv"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.write(`${[...COLUMNS, 'fields'].join(',')}\r\n`);
  let rows = 0;
  for (;;) {
    const body = (answer as { ok: true; body: { records: Record<string, unknown>[]; nextCursor: string | null } }).body;
    for (const record of body.records) {
      if (rows >= CSV_MAX_ROWS) break;
      res.write(csvLine(record));
      rows++;
    }
    if (!body.nextCursor || rows >= CSV_MAX_ROWS || res.destroyed) break;
    params.set('cursor', body.nextCursor);
    answer = await readApi(app, request, `/api/v1/records?${params}`);
    if (!answer.ok) {
      // Headers are gone: say it in the file, on a line of its own, rather than end it silently short.
      res.write(`# export stopped after ${rows} rows: ${answer.detail}\r\n`);
      break;
    }
  }
  res.end();
}
