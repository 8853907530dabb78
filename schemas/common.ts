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

/** The error statuses every authenticated route may answer with, for response maps. */
export const errorResponses = {
  '4xx': ErrorSchema,
  '5xx': ErrorSchema
}

/** A full response map: the given success statuses plus the shared error shape. */
export function responses<T extends Record<number, TSchema>> (ok: T): T & typeof errorResponses {
  return { ...ok, ...errorResponses }
}

export const WorkspaceParams = Type.Object({ id: Uuid })

export const SessionHeader = Type.Object({
  'x-session-id': Type.Optional(Uuid),
  'idempotency-key': Type.Optional(Text({ minLength: 1, maxLength: 200 }))
})

export const Cursor = Type.String({ maxLength: 2048, description: 'opaque; from the previous page' })
