import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import t from 'tap'
import { AppError, errors, toAppError } from '../../src/core/errors.js'
import { EnvSchema } from '../../src/core/config.js'

/**
 * The error codes the contract (docs/api.md) lists and the codes src/core/errors.ts can produce
 * are the same set: a code added on one side only fails here.
 */

const DOC = readFileSync(resolve(import.meta.dirname, '../../docs/api.md'), 'utf8')
const CODE = /`([A-Z][A-Z0-9_]{2,})`/g

/** The conventions' `| status | codes |` table: each code with the status it is listed under. */
function tableCodes (doc: string): Map<string, number> {
  const lines = doc.split('\n')
  const start = lines.findIndex(l => /^\|\s*status\s*\|\s*codes\s*\|/.test(l))
  const codes = new Map<string, number>()
  if (start < 0) return codes
  for (const line of lines.slice(start + 2)) {
    const row = /^\|\s*(\d{3})\s*\|(.*)\|\s*$/.exec(line)
    if (row === null) break
    for (const [, code] of (row[2] ?? '').matchAll(CODE)) if (code !== undefined && !SETTINGS.has(code)) codes.set(code, Number(row[1]))
  }
  return codes
}

// Backticked upper-case words in the prose that are not error codes: settings, HTTP methods, and
// Fastify's own codes (which the docs name as Fastify's, e.g. FST_ERR_BAD_URL).
const SETTINGS = new Set(Object.keys(EnvSchema.properties))
const METHODS = new Set(['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'])

/** Every code the document names anywhere (the table, and the sections' prose). */
function documentedCodes (doc: string): Set<string> {
  const found = new Set<string>()
  for (const [, code] of doc.matchAll(CODE)) {
    if (code === undefined || SETTINGS.has(code) || METHODS.has(code) || code.startsWith('FST_')) continue
    found.add(code)
  }
  return found
}

// Arguments for each factory: typed against `errors`, so a new factory must be added here.
const ARGS: { [K in keyof typeof errors]: Parameters<typeof errors[K]> } = {
  validation: ['bad'],
  presenceTooLarge: [3000, 2048, 1, 4],
  notSubscribed: ['workspace:x'],
  invalidSessionHeader: [],
  invalidPath: ['/a', 'why'],
  invalidMove: ['/a', '/a/b'],
  invalidPattern: ['bad', 0],
  invalidArchive: ['symlink', 'a symlink', '/a'],
  isADirectory: ['/a'],
  notADirectory: ['/a'],
  unauthenticated: [],
  tokenExpired: [],
  invalidCredentials: [],
  forbidden: ['no'],
  notFound: ['gone'],
  fileNotFound: ['/a'],
  workspaceNotFound: ['w'],
  accessLost: ['w'],
  snapshotNotFound: ['s'],
  revisionNotRetained: [1, 2],
  snapshotExists: ['s'],
  fileExists: ['/a'],
  targetExists: ['/a'],
  emailTaken: [],
  revertConflict: [['/a']],
  idempotencyInProgress: [],
  idempotencyKeyReused: ['k'],
  methodNotFound: ['m'],
  toolNotFound: ['t'],
  methodNotAllowed: ['POST'],
  editNoMatch: ['/a', 0, [{ line: 1, text: 'x' }]],
  editAmbiguous: ['/a', 0, 2, [1, 2]],
  preconditionFailed: ['/a', '1', null],
  fileTooLarge: [2, 1],
  tooManyEntries: [10],
  payloadTooLarge: [],
  notText: ['/a'],
  unsupportedMediaType: [],
  rateLimited: [10, 1000, 1],
  tooManySessions: [100, 60_000, 5],
  messageRateLimited: [],
  unavailable: ['down'],
  internal: []
}

/** What each factory makes: code → status. */
function factoryCodes (): Map<string, number> {
  const made = new Map<string, number>()
  for (const name of Object.keys(ARGS) as Array<keyof typeof errors>) {
    const error: unknown = Reflect.apply(errors[name], undefined, ARGS[name])
    if (!(error instanceof AppError)) throw new Error(`errors.${name} did not make an AppError`)
    made.set(error.code, error.statusCode)
  }
  return made
}

// What toAppError maps other errors to (its fallbacks, which pass a thrown error's own code
// through, are not codes of ours and are left out).
const MAPPED: Array<[label: string, thrown: unknown, code: string, status: number]> = [
  ['schema errors', { message: 'body must be object', validation: [{ instancePath: '', message: 'must be object' }] }, 'VALIDATION_FAILED', 400],
  ['invalid JSON', { code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'x' }, 'VALIDATION_FAILED', 400],
  ['empty JSON', { code: 'FST_ERR_CTP_EMPTY_JSON_BODY', message: 'x' }, 'VALIDATION_FAILED', 400],
  ['body too large', { code: 'FST_ERR_CTP_BODY_TOO_LARGE' }, 'PAYLOAD_TOO_LARGE', 413],
  ['media type', { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }, 'UNSUPPORTED_MEDIA_TYPE', 415],
  ['content length', { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' }, 'VALIDATION_FAILED', 400],
  ['statement timeout', { code: '57014' }, 'UNAVAILABLE', 503],
  ['connection refused', { code: 'ECONNREFUSED' }, 'UNAVAILABLE', 503],
  ['admin shutdown', { code: '57P01' }, 'UNAVAILABLE', 503],
  ['connection terminated', new Error('Connection terminated unexpectedly'), 'UNAVAILABLE', 503],
  ['anything else', new Error('boom'), 'INTERNAL', 500]
]

// The contract's table lists NOT_A_DIRECTORY under 400 while its operations text says 409; the
// server answers 409, a decision docs/api.md records ("Decisions (files and directories)").
const TABLE_STATUS_DIFFERS: Record<string, number> = { NOT_A_DIRECTORY: 400 }

t.test('a client that aborts its request body is a 4xx of its own, not a database outage', async t => {
  // Node's 'aborted' error carries ECONNRESET, one of the database's unavailable codes (found by
  // the raw-HTTP part of test/contract/openapi-fuzz.test.ts: logged as a 503 error).
  const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET', statusCode: 400 })
  t.equal(toAppError(aborted).statusCode, 400)
  t.equal(toAppError({ code: 'ECONNRESET' }).code, 'UNAVAILABLE', 'without a status it is still the database')
})

t.test('toAppError maps what it recognises to our codes', async t => {
  for (const [label, thrown, code, status] of MAPPED) {
    const e = toAppError(thrown)
    t.equal(e.code, code, `${label}: code`)
    t.equal(e.statusCode, status, `${label}: status`)
  }
})

t.test('the documented codes are exactly the codes errors.ts produces', async t => {
  const produced = factoryCodes()
  for (const [, , code, status] of MAPPED) produced.set(code, status)
  t.ok(produced.size > 0, 'errors.ts produces codes')
  const documented = documentedCodes(DOC)
  t.same([...documented].sort(), [...produced.keys()].sort(), 'docs/api.md names every code, and no other')
})

t.test('the status table lists every code under its status', async t => {
  const table = tableCodes(DOC)
  const produced = factoryCodes()
  t.ok(table.size > 0, 'the table is found')
  t.same([...table.keys()].sort(), [...produced.keys()].sort(), 'the table lists every code')
  for (const [code, status] of produced) {
    t.equal(table.get(code), TABLE_STATUS_DIFFERS[code] ?? status, `${code} is listed under ${TABLE_STATUS_DIFFERS[code] ?? status}`)
  }
})
