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
