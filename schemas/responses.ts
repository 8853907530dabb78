import { ErrorSets, type ErrorCodes } from './common.js'

/**
 * What the routes answer besides success, for the OpenAPI document: each route family's error
 * codes (derived from its code paths: routes, src/ services, the auth, rate-limit and overload
 * plugins), and examples of the main routes' bodies. A route's map is
 * `responses({ 200: … }, ...RouteErrors.<family>)`.
 */

/** Access to a workspace: not a member (or no such workspace) 404; the role or the token's permission lacking 403. */
const workspaceAccess: ErrorCodes = { 403: ['FORBIDDEN'], 404: ['WORKSPACE_NOT_FOUND'] }

/** A file mutation (PUT and DELETE of a file, an operation, a batch): every failure an operation can have. */
const fileMutation: ErrorCodes = {
  400: ['VALIDATION_FAILED', 'INVALID_PATH', 'INVALID_MOVE', 'IS_A_DIRECTORY'],
  404: ['FILE_NOT_FOUND'],
  409: ['FILE_EXISTS', 'TARGET_EXISTS', 'NOT_A_DIRECTORY', 'EDIT_NO_MATCH', 'EDIT_AMBIGUOUS'],
  412: ['PRECONDITION_FAILED'],
  413: ['FILE_TOO_LARGE', 'TOO_MANY_ENTRIES'],
  415: ['NOT_TEXT']
}

const { api, authenticated, body, idempotent } = ErrorSets

export const RouteErrors = {
  /** a /v1 route without a token and with a body: register, login, refresh, logout */
  open: [api, body],
  /** a route with a token, no body and nothing of its own to refuse (GET /v1/me, /v1/sessions, GET /v1/workspaces) */
  authenticated: [api, authenticated],
  /** POST /v1/workspaces */
  createWorkspace: [api, authenticated, body],
  /** a read of a workspace's own resources: GET /v1/workspaces/{id}, its members, its change feed */
  workspaceRead: [api, authenticated, workspaceAccess],
  /** DELETE /v1/workspaces/{id} (owner only; a DELETE may carry a body, which is parsed) */
  workspaceDelete: [api, authenticated, body, workspaceAccess],
  /** PUT and DELETE of a member (owner only): no such user or member 404 NOT_FOUND; the owner themself 400 */
  member: [api, authenticated, body, workspaceAccess, { 404: ['NOT_FOUND'] }],
  /** a session's activity or log.md: another user's or no such session 404 NOT_FOUND; a bad cursor 400 */
  session: [api, authenticated, { 404: ['NOT_FOUND'] }],
  /** GET of a file or directory: a bad path or revision 400; the path through a file 409; a ranged read of a directory 400, of a non-text file 415 */
  fileRead: [api, authenticated, workspaceAccess, {
    400: ['INVALID_PATH', 'IS_A_DIRECTORY'],
    404: ['FILE_NOT_FOUND'],
    409: ['NOT_A_DIRECTORY'],
    415: ['NOT_TEXT']
  }],
  /** PUT and DELETE of a file, an operation, a batch */
  fileMutation: [api, authenticated, body, idempotent, workspaceAccess, fileMutation],
  /** GET …/history: a bad path or cursor 400, a path never there 404 */
  history: [api, authenticated, workspaceAccess, { 400: ['INVALID_PATH'], 404: ['FILE_NOT_FOUND'] }],
  /** POST …/revert: another session changed the paths afterwards 409 REVERT_CONFLICT (without force) */
  revert: [api, authenticated, body, idempotent, workspaceAccess, { 409: ['REVERT_CONFLICT'], 413: ['TOO_MANY_ENTRIES'] }],
  /** GET …/tree: a bad path or cursor 400, a missing base 404, a file as the base 409 */
  tree: [api, authenticated, workspaceAccess, { 400: ['INVALID_PATH'], 404: ['FILE_NOT_FOUND'], 409: ['NOT_A_DIRECTORY'] }],
  /** GET …/changes */
  changes: [api, authenticated, workspaceAccess],
  /** POST …/search: a bad regex 400 INVALID_PATTERN, a bad path or glob 400, a revision no longer retained or a missing path 404 */
  search: [api, authenticated, body, workspaceAccess, { 400: ['INVALID_PATTERN', 'INVALID_PATH'], 404: ['FILE_NOT_FOUND'], 409: ['NOT_A_DIRECTORY'] }],
  /** GET …/find */
  find: [api, authenticated, workspaceAccess, { 400: ['INVALID_PATH'], 404: ['FILE_NOT_FOUND'], 409: ['NOT_A_DIRECTORY'] }],
  /** POST …/mcp: JSON-RPC failures are 200 answers; what the transport refuses has its own JSON-RPC error bodies */
  mcp: [api, authenticated, body, workspaceAccess],
  /** GET and DELETE …/mcp: 405 after the access check (a DELETE's body is parsed: add ErrorSets.body) */
  mcpNotAllowed: [api, authenticated, workspaceAccess, { 405: ['METHOD_NOT_ALLOWED'] }],
  /** GET …/snapshots/{name}: no such snapshot 404 */
  snapshotRead: [api, authenticated, workspaceAccess, { 404: ['SNAPSHOT_NOT_FOUND'] }],
  /** POST …/snapshots: a revision past the head 400, pruned 404, the name taken 409 */
  snapshotCreate: [api, authenticated, body, idempotent, workspaceAccess, { 404: ['REVISION_NOT_RETAINED'], 409: ['SNAPSHOT_EXISTS'] }],
  /** DELETE …/snapshots/{name} */
  snapshotDelete: [api, authenticated, body, idempotent, workspaceAccess, { 404: ['SNAPSHOT_NOT_FOUND'] }],
  /** POST …/fork: a revision past the head 400, pruned 404, more entries than a request may record 413 */
  fork: [api, authenticated, body, idempotent, workspaceAccess, { 404: ['REVISION_NOT_RETAINED'], 413: ['TOO_MANY_ENTRIES'] }],
  /** GET …/archive: a bad path 400, a missing base 404, a file as the base 409, more entries than a request may hold 413 */
  archiveExport: [api, authenticated, workspaceAccess, { 400: ['INVALID_PATH'], 404: ['FILE_NOT_FOUND'], 409: ['NOT_A_DIRECTORY'], 413: ['TOO_MANY_ENTRIES'] }],
  /** POST …/archive: a hostile, corrupt or unknown archive 400 INVALID_ARCHIVE, and whatever its batch can answer */
  archiveImport: [api, authenticated, body, idempotent, workspaceAccess, fileMutation, { 400: ['INVALID_ARCHIVE'] }],
  /** GET /v1/stats: without the admin permission 403 */
  stats: [api, authenticated],
  /** /health: answered even under pressure */
  liveness: [{ 500: ['INTERNAL'] }],
  /** /ready: 503 while the database or Redis does not answer, or under pressure */
  readiness: [{ 500: ['INTERNAL'], 503: ['UNAVAILABLE'] }]
} satisfies Record<string, ErrorCodes[]>

const id = '0f8fad5b-d9cb-469f-a165-70867728950e'
const userId = '7c9e6679-7425-40de-944b-e07fc1f90ae7'
const sessionId = '3f333df6-90a4-4fda-8dd3-9485d27cee36'
const at = '2026-01-05T10:00:00.000Z'
const meta = {
  path: '/src/app.ts',
  name: 'app.ts',
  kind: 'file',
  size: 19,
  mimeType: 'text/typescript',
  etag: '12',
  version: 2,
  sha256: '2f0b6d0c6f0e3c8bd6b1e4a5f0c6b3f0e1d2c3b4a5968778695a4b3c2d1e0f9a',
  metadata: {},
  createdAt: at,
  updatedAt: at,
  createdBy: userId,
  updatedBy: userId
}
const change = {
  revision: 12,
  op: 'update',
  kind: 'file',
  path: '/src/app.ts',
  newPath: null,
  etag: '12',
  version: 2,
  sha256: meta.sha256,
  size: 19,
  userId,
  sessionId,
  opId: null,
  at
}

/** Examples of the main routes' bodies (the document's `example` of each). */
export const Examples = {
  credentials: { email: 'ada@example.com', password: 'correct horse battery' },
  authResult: {
    user: { id: userId, email: 'ada@example.com', permissions: ['file.read', 'file.write'] },
    accessToken: 'eyJhbGciOiJIUzI1NiJ9.…',
    refreshToken: 'rt_…',
    expiresIn: 900,
    sessionId
  },
  createWorkspace: { name: 'my project' },
  workspace: { id, name: 'my project', ownerId: userId, role: 'owner', revision: 0, createdAt: at },
  write: { content: 'export const a = 1\n', mimeType: 'text/typescript' },
  writeResult: { file: meta, revision: 12 },
  read: { ...meta, content: 'export const a = 1\n', encoding: 'utf8' },
  tree: { revision: 12, entries: [{ ...meta, path: '/src', name: 'src', kind: 'directory', size: null, mimeType: null, sha256: null, version: 1, etag: '3' }, meta], nextCursor: null },
  changes: { head: 12, changes: [change] },
  batch: {
    operations: [
      { type: 'mkdir', path: '/lib' },
      { type: 'move', path: '/src/app.ts', newPath: '/lib/app.ts' },
      { type: 'edit', path: '/lib/app.ts', edits: [{ oldText: 'a = 1', newText: 'a = 2' }] }
    ]
  },
  batchResult: {
    results: [
      { data: { ...meta, path: '/lib', name: 'lib', kind: 'directory', size: null, mimeType: null, sha256: null, version: 1, etag: '13' }, revision: 13 },
      { data: { ...meta, path: '/lib/app.ts', etag: '13' }, revision: 13 },
      { data: { ...meta, path: '/lib/app.ts', etag: '13', version: 3 }, revision: 13, diff: '--- a/lib/app.ts\n+++ b/lib/app.ts\n@@ -1 +1 @@\n-export const a = 1\n+export const a = 2\n' }
    ],
    revision: 13
  }
}
