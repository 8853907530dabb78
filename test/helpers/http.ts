import type { Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type * as auth from '../../schemas/auth.js'
import type { ErrorSchema } from '../../schemas/common.js'
import type * as files from '../../schemas/files.js'
import type * as sessions from '../../schemas/sessions.js'
import type * as workspaces from '../../schemas/workspaces.js'

/**
 * The one HTTP client of the tests: the same request and response shape whether it goes through
 * `app.inject` (an app) or over real HTTP (a base URL of a spawned or listening server). Response
 * types are the route schemas' own, so a contract change shows up here at compile time.
 */

/** A schema's type as it travels in JSON: the client SDK's (client/src/types.ts), one definition. */
import type { Wire } from '../../client/src/types.js'
export type { Wire }

export type ErrorReply = Wire<Static<typeof ErrorSchema>>
export type AuthResult = Wire<Static<typeof auth.AuthResult>>
export type Workspace = Wire<Static<typeof workspaces.Workspace>>
export type Member = Wire<Static<typeof workspaces.Member>>
export type FileMeta = Wire<Static<typeof files.FileMeta>>
export type Entry = Wire<Static<typeof files.Entry>>
/** GET of a file: an entry whose content and encoding are present. */
export type FileBody = Entry & Required<Pick<Entry, 'content' | 'encoding'>>
/** GET of a directory: an entry whose children are present. */
export type DirBody = Entry & Required<Pick<Entry, 'children'>>
export type WriteResult = Wire<Static<typeof files.WriteResult>>
export type DeleteResult = Wire<Static<typeof files.DeleteResult>>
export type Operation = Wire<Static<typeof files.Operation>>
export type OperationResult = Wire<Static<typeof files.OperationResult>>
export type BatchResult = Wire<Static<typeof files.BatchResult>>
export type TreeResult = Wire<Static<typeof files.TreeResult>>
export type Change = Wire<Static<typeof files.Change>>
export type ChangesResult = Wire<Static<typeof files.ChangesResult>>
export type HistoryResult = Wire<Static<typeof files.HistoryResult>>
export type RevertResult = Wire<Static<typeof files.RevertResult>>
export type SessionSummary = Wire<Static<typeof sessions.SessionSummary>>
export type ActivityRecord = Wire<Static<typeof sessions.ActivityRecord>>
export type ActivityPage = Wire<Static<typeof sessions.ActivityPage>>

/** An operation's data: the entry it left, or (for a delete) how many entries went. */
export const isMeta = (data: OperationResult['data']): data is FileMeta => 'path' in data

/** An in-process app (requests go through `app.inject`) or the base URL of a listening server. */
export type Target = FastifyInstance | string

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE' | 'OPTIONS'

export interface RequestOptions {
  headers?: Record<string, string>
  /** an object is sent as JSON; a string or Buffer as it is (content type JSON unless headers say) */
  payload?: unknown
  /** sent as `Authorization: Bearer` */
  token?: string
}

/** A response, the same from `app.inject` and from `fetch`. */
export interface Res {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
  rawPayload: Buffer
  json: <T = unknown>() => T
}

export async function request (target: Target, method: Method, url: string, opts: RequestOptions = {}): Promise<Res> {
  const headers: Record<string, string> = {}
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  let payload: string | Buffer | undefined
  if (opts.payload !== undefined) {
    headers['content-type'] = 'application/json'
    payload = typeof opts.payload === 'string' || Buffer.isBuffer(opts.payload) ? opts.payload : JSON.stringify(opts.payload)
  }
  Object.assign(headers, opts.headers)
  if (typeof target !== 'string') {
    return await target.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) })
  }
  const res = await fetch(target + url, { method, headers, ...(payload === undefined ? {} : { body: payload }), signal: AbortSignal.timeout(30_000) })
  const rawPayload = Buffer.from(await res.arrayBuffer())
  const body = rawPayload.toString('utf8')
  return {
    statusCode: res.status,
    headers: Object.fromEntries(res.headers.entries()),
    body,
    rawPayload,
    json: <T>() => JSON.parse(body) as T
  }
}

/** The body of a response that must have this status; anything else throws (setup, not the test). */
export function expectStatus<T> (res: Res, status: number | number[], what: string): T {
  const ok = Array.isArray(status) ? status.includes(res.statusCode) : res.statusCode === status
  if (!ok) throw new Error(`${what}: expected ${String(status)}, got ${res.statusCode} ${res.body.slice(0, 500)}`)
  return res.json<T>()
}

export const JSON_TYPE = 'application/json; charset=utf-8'

/** What an error must carry beyond status and code. */
export interface ErrorExpectation {
  /** the assertion's label */
  label?: string
  /** matched against the error's message (a string: contained in it) */
  message?: string | RegExp
  /** matched against the error's details */
  details?: Record<string, unknown>
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * The one error assertion: the status, a JSON body, and the contract's error shape with exactly
 * this code and a non-empty message (plus `message`/`details` when given). Returns the body.
 * A response without headers (a raw socket reply) skips the content-type check.
 */
export function isError (t: Test, res: Pick<Res, 'statusCode' | 'body'> & { headers?: Res['headers'] }, statusCode: number, code: string, expect: string | ErrorExpectation = {}): ErrorReply {
  const { label = '', message, details } = typeof expect === 'string' ? { label: expect } : expect
  const what = `${label}${label === '' ? '' : ': '}${statusCode} ${code}`
  t.equal(res.statusCode, statusCode, `${what} (status; body ${res.body.slice(0, 300)})`)
  if (res.headers !== undefined) t.equal(res.headers['content-type'], JSON_TYPE, `${what} (JSON)`)
  let body: unknown
  try {
    body = JSON.parse(res.body)
  } catch {
    body = res.body
  }
  t.match(body, {
    statusCode,
    code: new RegExp(`^${escapeRegExp(code)}$`),
    error: String,
    message: message ?? /\S/,
    ...(details === undefined ? {} : { details })
  }, `${what} (error body)`)
  return body as ErrorReply
}
