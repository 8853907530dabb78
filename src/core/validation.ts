import { Ajv, type Options as AjvOptions, type SchemaValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import { UUID_PATTERN, JSON_DOCUMENT } from '../../schemas/common.js'

/**
 * The JSON Schema validator behind every TypeBox schema: HTTP bodies, query strings, WebSocket
 * messages and RPC params. Unknown properties are errors (never silently removed).
 * JSON numbers must be finite (`strictNumbers`): `1e400` parses to Infinity, which Ajv otherwise
 * takes for an integer. Not when coercing (query strings): there Ajv lets a coerced `"1e400"`
 * skip every check, so the integers of query strings carry a `maximum` instead (schemas/files.ts).
 */
export function makeAjv (options: AjvOptions = {}): Ajv {
  const coercing = options.coerceTypes !== undefined && options.coerceTypes !== false
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, coerceTypes: false, strictNumbers: !coercing, ...options })
  addFormats.default(ajv)
  const jsonDocument: SchemaValidateFunction = (schema: { maxDepth: number }, data: unknown) => {
    const problem = jsonDocumentProblem(data, schema.maxDepth)
    jsonDocument.errors = problem === undefined ? [] : [{ keyword: JSON_DOCUMENT, message: problem, params: { maxDepth: schema.maxDepth } }]
    return problem === undefined
  }
  ajv.addKeyword({ keyword: JSON_DOCUMENT, schemaType: 'object', errors: true, validate: jsonDocument })
  return ajv
}

// The schemas' own pattern: what a route's schema accepts as an id and what isUuid accepts are one.
const UUID = new RegExp(UUID_PATTERN)

/** A UUID in its one spelling (lower-case hex 8-4-4-4-12): ids, session ids, channel ids. */
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value)

// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
const NUL = /\u0000/

/**
 * Why `value` cannot be stored as a jsonb document (PostgreSQL refuses NUL and lone surrogates in
 * its strings, and JSON.stringify overflows the stack on very deep nesting), or undefined when it
 * can. Walks with its own stack, never recursion, so any depth that JSON.parse accepted is safe here.
 */
export function jsonDocumentProblem (value: unknown, maxDepth: number): string | undefined {
  const stack: Array<[unknown, number]> = [[value, 1]]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item
    if (typeof v === 'string') {
      if (NUL.test(v)) return 'must not contain NUL (U+0000) in a string'
      if (!v.isWellFormed()) return 'must not contain a lone surrogate in a string'
    } else if (v !== null && typeof v === 'object') {
      if (depth > maxDepth) return `must not nest deeper than ${maxDepth} levels`
      if (Array.isArray(v)) {
        for (const e of v) stack.push([e, depth + 1])
      } else {
        for (const [k, e] of Object.entries(v)) stack.push([k, depth], [e, depth + 1])
      }
    }
  }
  return undefined
}

/**
 * True when a parsed JSON value has an own `__proto__` key, or a `constructor` object with a
 * `prototype` key, anywhere: what Fastify refuses in a REST body (secure-json-parse,
 * `onProtoPoisoning: 'error'`), refused the same way in WebSocket messages. `raw` is the text it
 * was parsed from: without either word in it (the usual case) nothing is walked.
 */
export function hasPoisonedKey (raw: string, value: unknown): boolean {
  if (!raw.includes('__proto__') && !raw.includes('constructor')) return false
  const stack: unknown[] = [value]
  for (let v = stack.pop(); v !== undefined || stack.length > 0; v = stack.pop()) {
    if (v === null || typeof v !== 'object') continue
    if (Object.hasOwn(v, '__proto__')) return true
    const ctor = Object.hasOwn(v, 'constructor') ? (v as { constructor: unknown }).constructor : undefined
    if (ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return true
    stack.push(...(Array.isArray(v) ? v : Object.values(v)))
  }
  return false
}
