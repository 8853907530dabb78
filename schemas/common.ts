import { Type, type Static, type StringOptions, type TNull, type TSchema, type TString, type TUnion } from '@sinclair/typebox'

/** Shared primitives. Every route's schemas are built from these and the resource files beside. */

/** A value that may be null (the property is always there, unlike Type.Optional). */
export function Nullable<T extends TSchema> (schema: T): TUnion<[T, TNull]> {
  return Type.Union([schema, Type.Null()])
}

/**
 * Every id has one spelling: lower-case hex, 8-4-4-4-12. Ids are cache, fan-out and revocation
 * keys as strings, so a second spelling of one id (upper case, `urn:uuid:`, which `format: 'uuid'`
 * accepts) would be a second key for the same workspace or session. `isUuid` (src/core/validation.ts)
 * tests this same pattern.
 */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
export const Uuid = Type.String({ pattern: UUID_PATTERN, description: 'a UUID, lower-case hex 8-4-4-4-12' })

/**
 * Text stored as sent: no NUL (U+0000) and no lone surrogate, which PostgreSQL refuses (a 500) or
 * node-pg silently replaces. Ajv compiles patterns with the `u` flag, where a surrogate pair is
 * one code point outside the class and only a lone half falls in it.
 */
export const TEXT_PATTERN = '^[^\\u0000\\ud800-\\udfff]*$'
export function Text (options: StringOptions = {}): TString {
  return Type.String({ pattern: TEXT_PATTERN, ...options })
}

/**
 * The custom keyword (src/core/validation.ts) for a free-form JSON value stored as jsonb:
 * `{ [JSON_DOCUMENT]: { maxDepth } }` bounds its nesting and refuses NUL and lone surrogates in
 * every key and string, which no standard keyword can say of an open object.
 */
export const JSON_DOCUMENT = 'x-json-document'
// Services hand out Dates; the compiled serializer writes them as ISO-8601 UTC strings.
export const Timestamp = Type.Unsafe<Date | string>(Type.String({ format: 'date-time', description: 'ISO-8601 UTC' }))

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'stable machine-readable code, e.g. FILE_NOT_FOUND' }),
  error: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Object({}, { additionalProperties: true }))
}, { $id: 'Error', title: 'Error' })
export type ErrorReply = Static<typeof ErrorSchema>

/** The statuses an error answer can have (docs/api.md, the status table). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 412 | 413 | 415 | 422 | 429 | 500 | 503
/** A route's error statuses, each with the codes (src/core/errors.ts) it answers them with. */
export type ErrorCodes = Partial<Record<ErrorStatus, readonly string[]>>

/**
 * Response headers, as the OpenAPI document describes them (`headers` of a response schema:
 * @fastify/swagger moves them to the response; the serializer ignores them).
 */
export const ResponseHeaders = {
  etag: { ETag: Type.String({ description: 'the entry\'s etag, quoted: "<etag>" for a file, W/"<etag>.<revision>" for a directory listing' }) },
  revision: { 'X-Revision': Type.Integer({ description: 'the workspace revision the answer was read at' }) },
  retryAfter: { 'Retry-After': Type.Integer({ description: 'seconds to wait before retrying' }) },
  allow: { Allow: Type.String({ description: 'the methods this endpoint accepts (POST)' }) }
}

/** Every error status with the headers its answers carry (rate-limit headers: docs.ts adds them to every /v1 answer). */
const ERROR_HEADERS: Partial<Record<ErrorStatus, Record<string, TSchema>>> = {
  405: ResponseHeaders.allow,
  429: ResponseHeaders.retryAfter,
  503: ResponseHeaders.retryAfter
}

const STATUS_TEXT: Record<ErrorStatus, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

/**
 * The error answers of one status, listing its codes: in the response's description (for people)
 * and as the enum of `code` (for client generators). The serializer does not check enums, so a
 * code missing here still reaches the client whole; test/api/openapi.test.ts checks real answers
 * against these lists.
 */
export function errorResponse (status: ErrorStatus, codes: readonly string[]): typeof ErrorSchema {
  const list = [...new Set(codes)].sort()
  const headers = ERROR_HEADERS[status]
  return Type.Object({
    statusCode: Type.Integer({ enum: [status] }),
    code: Type.String({ enum: list, description: 'stable machine-readable code (docs/api.md, the status table)' }),
    error: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Object({}, { additionalProperties: true }))
  }, { title: `Error ${status}`, description: `${STATUS_TEXT[status]}: ${list.join(', ')}`, ...(headers === undefined ? {} : { headers }) })
}

/**
 * Sets of error codes shared by many routes, to merge with a route's own in `responses(ok, …sets)`.
 * Derived from the code paths: the plugins answer these before (or around) any route's handler.
 */
export const ErrorSets = {
  /** every /v1 route: rate limit (plugins/external/rate-limit.ts), overload, database down or a conflict to retry (503), a bug (500) */
  api: { 429: ['RATE_LIMITED'], 500: ['INTERNAL'], 503: ['UNAVAILABLE'] },
  /**
   * a route behind the access token (plugins/app/auth.ts): no, a bad or an ended token (401); a
   * malformed X-Session-Id (400) or another user's (403); a new session id over
   * MAX_NEW_SESSIONS_PER_WINDOW (429)
   */
  authenticated: { 400: ['VALIDATION_FAILED'], 401: ['UNAUTHENTICATED', 'TOKEN_EXPIRED'], 403: ['FORBIDDEN'], 429: ['RATE_LIMITED'] },
  /** a route that reads a body (any but GET): not JSON, over its body limit, another content type */
  body: { 400: ['VALIDATION_FAILED'], 413: ['PAYLOAD_TOO_LARGE'], 415: ['UNSUPPORTED_MEDIA_TYPE'] },
  /** a mutation that takes an Idempotency-Key (src/mutations/idempotency.ts) */
  idempotent: { 409: ['IN_PROGRESS'], 422: ['IDEMPOTENCY_KEY_REUSED'] }
} satisfies Record<string, ErrorCodes>

/** The error answers of a route: the statuses of every set, each with the codes of all of them. */
export function errorResponses (...sets: ErrorCodes[]): Partial<Record<ErrorStatus, typeof ErrorSchema>> {
  const merged = new Map<ErrorStatus, string[]>()
  for (const set of sets) {
    for (const [status, codes] of Object.entries(set) as Array<[string, readonly string[]]>) {
      const s = Number(status) as ErrorStatus
      merged.set(s, [...(merged.get(s) ?? []), ...codes])
    }
  }
  return Object.fromEntries([...merged].sort(([a], [b]) => a - b).map(([status, codes]) => [status, errorResponse(status, codes)]))
}

/**
 * A success answer with more than one content type (Fastify picks the serializer by the reply's
 * Content-Type; a Buffer, a stream or a string is sent as it is).
 */
export interface ContentResponse {
  description: string
  headers?: Record<string, TSchema>
  content: Record<string, { schema: TSchema, example?: unknown }>
}

/** Before a route lists its errors: any 4xx or 5xx in the error shape. */
const anyError = { '4xx': ErrorSchema, '5xx': ErrorSchema }

/**
 * A route's response map: its success statuses plus its error answers. Give the error codes as
 * sets (`ErrorSets.*` and the route's own `{ 404: ['FILE_NOT_FOUND'], … }`): each status is then
 * listed with its codes. Without them the map has only the generic `4xx`/`5xx` error shape.
 */
export function responses<T extends Record<number, TSchema | ContentResponse>> (ok: T, ...errorSets: ErrorCodes[]): T & Partial<Record<ErrorStatus | '4xx' | '5xx', typeof ErrorSchema>> {
  return { ...ok, ...(errorSets.length === 0 ? anyError : errorResponses(...errorSets)) }
}

/**
 * A success answer's schema with response headers and a description (for the document), and
 * optionally an example; the schema itself is not changed (it is shared with other routes and
 * the WebSocket RPC).
 */
export function described<T extends TSchema> (schema: T, options: { description?: string, headers?: Record<string, TSchema>, example?: unknown }): T {
  const { example, ...rest } = options
  return { ...schema, ...rest, ...(example === undefined ? {} : { examples: [example] }) }
}

/** No body: 204, 304 (the document then has no content entry). */
export function noContent (description: string, headers?: Record<string, TSchema>): TNull {
  return Type.Null({ description, ...(headers === undefined ? {} : { headers }) })
}

export const WorkspaceParams = Type.Object({ id: Uuid })

export const SessionHeader = Type.Object({
  'x-session-id': Type.Optional(Uuid),
  'idempotency-key': Type.Optional(Text({ minLength: 1, maxLength: 200 }))
})

export const Cursor = Type.String({ maxLength: 2048, description: 'opaque; from the previous page' })
