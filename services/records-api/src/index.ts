export { buildRecordsApi, type RecordsApiDeps } from './app.ts';
export { apiTokens, installAuth, type Principal, requireRole } from './auth.ts';
