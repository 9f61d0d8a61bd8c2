import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CALL_MESSAGE_STATUSES, CMS_WRITE_STATUSES } from '@cms/db';
import { sharedSchemas } from '../../services/records-api/src/schemas.ts';

// The status columns' values are const arrays in libs/db (the column types, the services and the API all take them
// from there). These check that the published OpenAPI schemas list exactly those values and say what each means.

interface StatusSchema {
  enum?: readonly string[];
  description?: string;
}

function statusOf(id: string, path: string[] = []): StatusSchema {
  const schema = sharedSchemas.find((s) => s.$id === id) as unknown as { properties: Record<string, unknown> };
  assert.ok(schema, `shared schema ${id}`);
  let node = schema.properties;
  for (const key of path) node = (node[key] as { properties: Record<string, unknown> }).properties;
  return node.status as StatusSchema;
}

function assertDocuments(status: StatusSchema, values: readonly string[]): void {
  assert.deepEqual(status.enum, [...values]);
  for (const value of values) assert.match(status.description ?? '', new RegExp(`(^|; )${value}: `), `${value} is described`);
}

test('call_messages.status: the callMessage schema lists every CallMessageStatus (unmanaged included) and describes it', () => {
  assert.ok(CALL_MESSAGE_STATUSES.includes('unmanaged'));
  assertDocuments(statusOf('callMessage'), CALL_MESSAGE_STATUSES);
});

test('call_messages.status: the call summary message lists every CallMessageStatus', () => {
  assertDocuments(statusOf('callSummary', ['message']), CALL_MESSAGE_STATUSES);
});

test('cms_writes.status: the cmsWrite schema lists every CmsWriteStatus and describes it', () => {
  assertDocuments(statusOf('cmsWrite'), CMS_WRITE_STATUSES);
});
