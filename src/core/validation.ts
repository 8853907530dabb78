import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'

/**
 * The JSON Schema validator behind every TypeBox schema: HTTP bodies, query strings, WebSocket
 * messages and RPC params. Unknown properties are errors (never silently removed).
 */
export function makeAjv (options: AjvOptions = {}): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, coerceTypes: false, ...options })
  addFormats.default(ajv)
  return ajv
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A UUID in its canonical text form (ids, session ids), checked before it goes anywhere. */
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value)
