import { STATUS_CODES } from 'node:http'
import type { ErrorReply } from '../../schemas/common.js'

/**
 * Every error the API answers with is an AppError: an HTTP status, a stable code from the
 * contract, a message for people and optional machine-readable details. They are made here and
 * nowhere else, so the list of codes below is the complete list.
 */
export class AppError extends Error {
  readonly statusCode: number
  readonly code: string
  readonly details: Record<string, unknown> | undefined
  readonly headers: Record<string, string> | undefined

  constructor (statusCode: number, code: string, message: string, details?: Record<string, unknown>, headers?: Record<string, string>) {
    super(message)
    this.name = 'AppError'
    this.statusCode = statusCode
    this.code = code
    this.details = details
    this.headers = headers
  }

  toJSON (): ErrorBody {
    return errorBody(this.statusCode, this.code, this.message, this.details)
  }
}

/** The body of every error answer (schemas/common.ts describes it). */
export type ErrorBody = ErrorReply

export function errorBody (statusCode: number, code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  const body: ErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
  if (details !== undefined) body.details = details
  return body
}

const quote = (s: string): string => JSON.stringify(s)

export const errors = {
  validation: (message: string, details?: Record<string, unknown>) => new AppError(400, 'VALIDATION_FAILED', message, details),
  invalidSessionHeader: () => new AppError(400, 'VALIDATION_FAILED', 'X-Session-Id must be a UUID in lower-case hex (8-4-4-4-12)'),
  invalidPath: (path: string, why: string) => new AppError(400, 'INVALID_PATH', `invalid path ${quote(path)}: ${why}`),
  invalidMove: (from: string, to: string) => new AppError(400, 'INVALID_MOVE', `cannot move or copy ${from} into its own subtree (${to})`),
  /** a search regex RE2 cannot parse (or a newline in a query); `position` is a UTF-16 index into the query */
  invalidPattern: (message: string, position: number) => new AppError(400, 'INVALID_PATTERN', message, { position }),
  /** an archive an import refuses (src/archive): `reason` says why, `entry` names the entry when one is to blame */
  invalidArchive: (reason: string, message: string, entry?: string) =>
    new AppError(400, 'INVALID_ARCHIVE', `invalid archive: ${message}`, entry === undefined ? { reason } : { reason, entry }),
  isADirectory: (path: string) => new AppError(400, 'IS_A_DIRECTORY', `${path} is a directory`),
  notADirectory: (path: string) => new AppError(409, 'NOT_A_DIRECTORY', `${path} is a file, not a directory`),
  unauthenticated: (message = 'authentication required') => new AppError(401, 'UNAUTHENTICATED', message),
  tokenExpired: () => new AppError(401, 'TOKEN_EXPIRED', 'access token expired'),
  invalidCredentials: () => new AppError(401, 'INVALID_CREDENTIALS', 'invalid email or password'),
  forbidden: (message: string) => new AppError(403, 'FORBIDDEN', message),
  notFound: (message: string) => new AppError(404, 'NOT_FOUND', message),
  fileNotFound: (path: string) => new AppError(404, 'FILE_NOT_FOUND', `no such file or directory: ${path}`),
  workspaceNotFound: (id: string) => new AppError(404, 'WORKSPACE_NOT_FOUND', `workspace ${id} not found`),
  /** a WebSocket subscription ended by a membership change */
  accessLost: (id: string) => new AppError(404, 'WORKSPACE_NOT_FOUND', `access to workspace ${id} was lost`),
  snapshotNotFound: (name: string) => new AppError(404, 'SNAPSHOT_NOT_FOUND', `no snapshot named ${quote(name)} in this workspace`),
  /** a snapshot or fork at a revision whose history retention has pruned */
  revisionNotRetained: (revision: number, prunedThrough: number) =>
    new AppError(404, 'REVISION_NOT_RETAINED', `revision ${revision} is no longer retained (the oldest readable is ${prunedThrough})`, { prunedThrough }),
  snapshotExists: (name: string) => new AppError(409, 'SNAPSHOT_EXISTS', `a snapshot named ${quote(name)} already exists in this workspace`),
  fileExists: (path: string) => new AppError(409, 'FILE_EXISTS', `${path} already exists`),
  targetExists: (path: string) => new AppError(409, 'TARGET_EXISTS', `${path} already exists`),
  emailTaken: () => new AppError(409, 'EMAIL_TAKEN', 'an account with this email already exists'),
  revertConflict: (paths: string[]) => new AppError(409, 'REVERT_CONFLICT',
    `another session changed ${paths.length} of these paths afterwards; revert with force to leave them as they are`, { paths }),
  idempotencyInProgress: () => new AppError(409, 'IN_PROGRESS', 'a request with this Idempotency-Key is still in progress'),
  idempotencyKeyReused: (key: string) => new AppError(422, 'IDEMPOTENCY_KEY_REUSED', `Idempotency-Key ${quote(key)} was used with a different request`),
  methodNotFound: (method: string) => new AppError(404, 'METHOD_NOT_FOUND', `unknown rpc method ${quote(method)}`),
  /** an MCP tools/call naming no tool of this server (src/mcp) */
  toolNotFound: (name: string) => new AppError(404, 'METHOD_NOT_FOUND', `unknown tool ${quote(name)}`),
  /** an HTTP method a route does not serve: GET and DELETE of the stateless MCP endpoint */
  methodNotAllowed: (allow: string) => new AppError(405, 'METHOD_NOT_ALLOWED', `method not allowed; this endpoint accepts ${allow}`, undefined, { allow }),
  /** an edit's oldText is not in the file: `closest` are the lines most like its first line */
  editNoMatch: (path: string, editIndex: number, closest: Array<{ line: number, text: string }>) =>
    new AppError(409, 'EDIT_NO_MATCH', `edit ${editIndex}: oldText was not found in ${path}` +
      (closest.length === 0 ? '' : `; closest lines: ${closest.map(c => c.line).join(', ')}`), { editIndex, closest }),
  /** an edit's oldText occurs `count` times (without replaceAll): `lines` lists where (at most 100) */
  editAmbiguous: (path: string, editIndex: number, count: number, lines: number[]) =>
    new AppError(409, 'EDIT_AMBIGUOUS', `edit ${editIndex}: oldText occurs ${count} times in ${path} (line${lines.length === 1 ? '' : 's'} ${lines.slice(0, 10).join(', ')}${lines.length > 10 ? ', …' : ''}); ` +
      'add surrounding lines to make it unique, or set replaceAll', { editIndex, count, lines }),
  preconditionFailed: (path: string, etag: string, current: Record<string, unknown> | null) =>
    new AppError(412, 'PRECONDITION_FAILED', `${path} changed since etag ${quote(etag)}`, { current }),
  fileTooLarge: (size: number, max: number) => new AppError(413, 'FILE_TOO_LARGE', `file is ${size} bytes; the limit is ${max}`),
  tooManyEntries: (max: number) => new AppError(413, 'TOO_MANY_ENTRIES', `the request would touch more than ${max} entries (MAX_ENTRIES_PER_REQUEST)`, { max }),
  payloadTooLarge: (message = 'request body is too large') => new AppError(413, 'PAYLOAD_TOO_LARGE', message),
  /** a text operation (edit, ranged read) on a file whose bytes are not UTF-8 text */
  notText: (path: string) => new AppError(415, 'NOT_TEXT', `${path} is not UTF-8 text`),
  unsupportedMediaType: () => new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'unsupported content type: send application/json'),
  rateLimited: (limit: number, windowMs: number, retryAfterSeconds: number) =>
    new AppError(429, 'RATE_LIMITED', `rate limit exceeded: ${limit} requests per ${windowMs / 1000} s; retry in ${retryAfterSeconds} s`,
      { limit, windowMs, retryAfter: retryAfterSeconds }, { 'retry-after': String(retryAfterSeconds) }),
  /** a user's new session ids over MAX_NEW_SESSIONS_PER_WINDOW (src/accounts/sessions.ts) */
  tooManySessions: (limit: number, windowMs: number, retryAfterSeconds: number) =>
    new AppError(429, 'RATE_LIMITED', `too many new sessions: ${limit} per ${windowMs / 1000} s; retry in ${retryAfterSeconds} s or reuse a session id`,
      { limit, windowMs, retryAfter: retryAfterSeconds }, { 'retry-after': String(retryAfterSeconds) }),
  /** a WebSocket message over the socket's WS_MESSAGES_PER_SECOND: answered, then dropped */
  presenceTooLarge: (size: number, max: number, depth: number, maxDepth: number) => new AppError(413, 'PRESENCE_TOO_LARGE',
    size > max ? `presence state is ${size} bytes; the limit is ${max}` : `presence state is nested ${depth} deep; the limit is ${maxDepth}`),
  notSubscribed: (channel: string) => new AppError(409, 'NOT_SUBSCRIBED', `subscribe to ${channel} first`),
  messageRateLimited: () => new AppError(429, 'RATE_LIMITED', 'too many messages; slow down'),
  unavailable: (message: string, retryAfterSeconds = 5) =>
    new AppError(503, 'UNAVAILABLE', message, undefined, { 'retry-after': String(retryAfterSeconds) }),
  internal: () => new AppError(500, 'INTERNAL', 'internal server error')
}

/**
 * The raw HTTP answer to a request Node's parser refused (a NUL or CR in a header, a garbled
 * request line, conflicting Content-Length, bad chunked encoding, headers over the limit, a
 * request not received in time): the contract's error shape and codes, where Fastify's default
 * answer has no `code` (and 431 or 408, statuses the contract does not have).
 */
export function clientErrorAnswer (err: { code?: string }): string {
  const e = err.code === 'HPE_HEADER_OVERFLOW'
    ? errors.payloadTooLarge('request headers are too large')
    : errors.validation(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'the request was not received in time' : 'malformed HTTP request')
  const body = JSON.stringify(e.toJSON())
  return `HTTP/1.1 ${e.statusCode} ${STATUS_CODES[e.statusCode] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

/**
 * An error answered earlier and stored (an Idempotency-Key's failed first response), made again
 * from its status and body so that a replay answers exactly as the first request did.
 */
export function storedError (statusCode: number, body: unknown): AppError {
  const b = (body !== null && typeof body === 'object' ? body : {}) as { code?: unknown, message?: unknown, details?: unknown }
  const details = b.details !== null && typeof b.details === 'object' ? b.details as Record<string, unknown> : undefined
  return new AppError(statusCode, typeof b.code === 'string' ? b.code : 'INTERNAL', typeof b.message === 'string' ? b.message : '', details)
}

/** A failed op inside a batch: the op's own error, with the batch position in details. */
export function batchError (index: number, cause: AppError): AppError {
  return new AppError(cause.statusCode, cause.code, `operation ${index}: ${cause.message}`,
    { ...cause.details, index, code: cause.code })
}

const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08006', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND'])

/** Maps anything thrown to an AppError; what is not recognised is an INTERNAL 500. */
/** One JSON Schema (Ajv) error, as validators report it. */
export interface SchemaError { instancePath?: string, message?: string, keyword?: string, params?: unknown }

/**
 * VALIDATION_FAILED from schema errors, in one shape for REST and RPC: `details.errors` lists
 * `{ path, message, keyword, params }`; when the first lies inside `operations[i]` (a batch),
 * `details` also has `{ index, code }`, as for a batch's other failures.
 */
export function schemaErrors (message: string, list: SchemaError[]): AppError {
  const errs = list.map(v => ({ path: v.instancePath ?? '', message: v.message ?? 'invalid', keyword: v.keyword ?? '', params: v.params ?? {} }))
  const index = /^\/operations\/(\d+)(?:\/|$)/.exec(errs[0]?.path ?? '')?.[1]
  return errors.validation(message, { ...(index === undefined ? {} : { index: Number(index), code: 'VALIDATION_FAILED' }), errors: errs })
}

/**
 * The error as a client may see it, over REST and WebSocket alike: an INTERNAL error's own
 * message (a database's, say) only in development; elsewhere the generic one.
 */
export function publicError (error: AppError, exposeInternal: boolean): AppError {
  return error.statusCode === 500 && !exposeInternal ? errors.internal() : error
}

export function toAppError (error: unknown): AppError {
  if (error instanceof AppError) return error
  const e = error as { code?: unknown, message?: string, statusCode?: unknown } & { validation?: SchemaError[] }
  if (Array.isArray(e.validation)) return schemaErrors(e.message ?? 'validation failed', e.validation)
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.validation(e.message ?? 'the body is not valid JSON')
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.payloadTooLarge()
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType()
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.validation('content-length does not match the body')
    case '57014':
      return errors.unavailable('the database did not answer in time')
    case '40P01':
    case '40001':
      // A deadlock or a serialization failure: nothing was done, and the same request may succeed now.
      return errors.unavailable('the request conflicted with another one at the same time; retry')
  }
  // Before the database's codes: a client that aborts its request body is an ECONNRESET with
  // statusCode 400 (Node's 'aborted'), not a database outage.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError(e.statusCode, typeof e.code === 'string' ? e.code : 'BAD_REQUEST', e.message ?? 'bad request')
  }
  if (typeof e.code === 'string' && PG_UNAVAILABLE.has(e.code)) return errors.unavailable('the database is unavailable')
  if (typeof e.message === 'string' && /timeout exceeded when trying to connect|Connection terminated/i.test(e.message)) {
    return errors.unavailable('the database is unavailable')
  }
  return new AppError(500, 'INTERNAL', e.message ?? 'internal error')
}
