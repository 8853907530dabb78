import type { FastifyInstance } from 'fastify'
import type { TestUser } from './app.js'
import type { Change, Meta as FileMeta } from './files.js'

/** Shapes of the files API (contract "Files and directories", "Revisions and the change feed"). */

export type { Meta as FileMeta, Change } from './files.js'

export interface FileBody extends FileMeta {
  content?: string
  encoding?: 'utf8' | 'base64'
  children?: FileMeta[]
}

export interface ChangesPage { head: number, changes: Change[], reset?: boolean }
export interface TreePage { revision: number, entries: FileMeta[], nextCursor: string | null }
export interface PutResult { file: FileMeta, revision: number }
export interface OpResult { success: true, data: FileMeta | { deleted: number }, revision: number, timestamp: string }
export interface BatchResult { results: Array<{ data: FileMeta | { deleted: number }, revision: number }>, revision: number }
export interface ErrorResponse { statusCode: number, code: string, error: string, message: string, details?: Record<string, unknown> }

export interface Op {
  type: 'create' | 'update' | 'delete' | 'move' | 'copy' | 'mkdir'
  path: string
  newPath?: string
  content?: string
  encoding?: 'utf8' | 'base64'
  mimeType?: string
  metadata?: Record<string, unknown>
  ifMatch?: string
  overwrite?: boolean
}

export interface Reply { status: number, body: string, headers: Record<string, string | string[] | number | undefined> }

/** `/files/<path>` with each segment percent-encoded. */
export function filesUrl (ws: string, path: string): string {
  const tail = path === '/' ? '/' : path.split('/').map(encodeURIComponent).join('/')
  return `/v1/workspaces/${ws}/files${tail}`
}

export function parse<T> (reply: Reply): T {
  return JSON.parse(reply.body) as T
}

async function call (app: FastifyInstance, user: TestUser, method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await app.inject({
    method,
    url,
    headers: { ...user.auth, ...headers },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> })
  })
  return { status: res.statusCode, body: res.body, headers: res.headers }
}

export async function getFile (app: FastifyInstance, user: TestUser, ws: string, path: string): Promise<Reply> {
  return await call(app, user, 'GET', filesUrl(ws, path))
}

export async function putFile (app: FastifyInstance, user: TestUser, ws: string, path: string, content: string, headers: Record<string, string> = {}): Promise<Reply> {
  return await call(app, user, 'PUT', filesUrl(ws, path), { content }, headers)
}

export async function postOp (app: FastifyInstance, user: TestUser, ws: string, op: Op): Promise<Reply> {
  return await call(app, user, 'POST', `/v1/workspaces/${ws}/operations`, op)
}

export async function postBatch (app: FastifyInstance, user: TestUser, ws: string, operations: Op[]): Promise<Reply> {
  return await call(app, user, 'POST', `/v1/workspaces/${ws}/operations/batch`, { operations })
}

export async function workspaceRevision (app: FastifyInstance, user: TestUser, ws: string): Promise<number> {
  const res = await call(app, user, 'GET', `/v1/workspaces/${ws}`)
  if (res.status !== 200) throw new Error(`GET workspace: ${res.status} ${res.body}`)
  return parse<{ revision: number }>(res).revision
}

export async function treePage (app: FastifyInstance, user: TestUser, ws: string, query: Record<string, string>): Promise<Reply> {
  return await call(app, user, 'GET', `/v1/workspaces/${ws}/tree?${new URLSearchParams(query).toString()}`)
}

/** Every change after `since`, following pages of `limit`; throws on a non-200 or a reset. */
export async function allChanges (app: FastifyInstance, user: TestUser, ws: string, since = 0, limit = 1000): Promise<{ head: number, changes: Change[] }> {
  const changes: Change[] = []
  let cursor = since
  let head = -1
  for (let page = 0; page < 10_000; page++) {
    const res = await call(app, user, 'GET', `/v1/workspaces/${ws}/changes?since=${cursor}&limit=${limit}`)
    if (res.status !== 200) throw new Error(`GET changes since=${cursor}: ${res.status} ${res.body}`)
    const body = parse<ChangesPage>(res)
    if (body.reset === true) throw new Error(`GET changes since=${cursor}: reset`)
    head = body.head
    if (body.changes.length === 0) break
    changes.push(...body.changes)
    const last = body.changes[body.changes.length - 1]
    if (last === undefined || last.revision <= cursor) throw new Error(`changes do not advance past ${cursor}`)
    cursor = last.revision
    if (cursor >= head) break
  }
  return { head, changes }
}

/** Byte-wise (UTF-8) comparison, the order of COLLATE "C". */
export function compareBytes (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

export function statusCounts (replies: Reply[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const r of replies) out[r.status] = (out[r.status] ?? 0) + 1
  return out
}

/** A compact summary of unexpected replies for assertion messages. */
export function describeOthers (replies: Reply[], expected: number[]): string {
  return replies.filter(r => !expected.includes(r.status)).slice(0, 3).map(r => `${r.status} ${r.body.slice(0, 300)}`).join(' | ')
}
