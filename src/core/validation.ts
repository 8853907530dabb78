import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'
import { UUID_PATTERN } from '../../schemas/common.js'

/**
 * The JSON Schema validator behind every TypeBox schema: HTTP bodies, query strings, WebSocket
 * messages and RPC params. Unknown properties are errors (never silently removed).
 */
export function makeAjv (options: AjvOptions = {}): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, coerceTypes: false, ...options })
  addFormats.default(ajv)
  return ajv
}

// The schemas' own pattern: what a route's schema accepts as an id and what isUuid accepts are one.
const UUID = new RegExp(UUID_PATTERN)

/** A UUID in its one spelling (lower-case hex 8-4-4-4-12): ids, session ids, channel ids. */
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value)
