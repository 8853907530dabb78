import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { build, createWorkspace, registerUser, type Teardown, type TestUser } from './app.js'
import { expectStatus, request, type Change, type ChangesResult, type FileBody, type Operation, type OperationResult, type Res, type TreeResult, type Workspace, type WriteResult } from './http.js'

/** The files API as the files-*.test.ts and session tests use it: one user's workspace. */

export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
export const DIGITS = /^\d+$/

export const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

/** `/src/a b.ts` → `src/a%20b.ts`: each segment percent-encoded on its own. */
export function encodePath (path: string): string {
  return path.split('/').slice(1).map(s => encodeURIComponent(s)).join('/')
}

/** `?a=1&b=2` from a query object, or '' when it is empty. */
function queryString (query: Record<string, string | number>): string {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
  return qs === '' ? '' : '?' + qs
}

/** A user and a workspace of theirs, with a request method for each route under test. */
export class Ctx {
  constructor (readonly app: FastifyInstance, readonly user: TestUser, readonly ws: string) {}

  filesUrl (path: string, ws = this.ws): string {
    return `/v1/workspaces/${ws}/files/${encodePath(path)}`
  }

  /** Any request as this user (extra headers override theirs). */
  async send (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Res> {
    return await request(this.app, method, url, { payload, headers: { ...this.user.auth, ...headers } })
  }

  /** PUT with a JSON body (object) or a raw string body with the given content type. */
  async put (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
    return await this.putUrl(this.filesUrl(path), body, headers)
  }

  async putUrl (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
    return await this.send('PUT', url, body, headers)
  }

  async write (path: string, content: string, extra: Record<string, unknown> = {}): Promise<WriteResult> {
    return expectStatus<WriteResult>(await this.put(path, { content, ...extra }), [200, 201], `write ${path}`)
  }

  async get (path: string, query = '', headers: Record<string, string> = {}): Promise<Res> {
    return await this.getUrl(this.filesUrl(path) + query, headers)
  }

  async getUrl (url: string, headers: Record<string, string> = {}): Promise<Res> {
    return await this.send('GET', url, undefined, headers)
  }

  async read (path: string): Promise<FileBody> {
    return expectStatus<FileBody>(await this.get(path), 200, `read ${path}`)
  }

  /** The bytes of a file (via ?format=raw), or null when the GET is not 200. */
  async bytes (path: string): Promise<Buffer | null> {
    const res = await this.get(path, '?format=raw')
    return res.statusCode === 200 ? res.rawPayload : null
  }

  async del (path: string, headers: Record<string, string> = {}): Promise<Res> {
    return await this.send('DELETE', this.filesUrl(path), undefined, headers)
  }

  async op (op: Operation | Record<string, unknown>, headers: Record<string, string> = {}): Promise<Res> {
    return await this.send('POST', `/v1/workspaces/${this.ws}/operations`, op, headers)
  }

  async batch (operations: Array<Operation | Record<string, unknown>>, headers: Record<string, string> = {}): Promise<Res> {
    return await this.send('POST', `/v1/workspaces/${this.ws}/operations/batch`, { operations }, headers)
  }

  async mkdir (path: string): Promise<OperationResult> {
    return expectStatus<OperationResult>(await this.op({ type: 'mkdir', path }), 200, `mkdir ${path}`)
  }

  async treeRes (query: Record<string, string | number>): Promise<Res> {
    return await this.getUrl(`/v1/workspaces/${this.ws}/tree${queryString(query)}`)
  }

  async tree (path = '/', depth = 0, limit = 5000): Promise<TreeResult> {
    return expectStatus<TreeResult>(await this.treeRes({ path, depth, limit }), 200, `tree ${path}`)
  }

  /** Every path in the workspace (depth 0, all pages). */
  async allPaths (path = '/'): Promise<string[]> {
    return (await this.tree(path, 0, 5000)).entries.map(e => e.path)
  }

  async changesRes (query: Record<string, string | number>): Promise<Res> {
    return await this.getUrl(`/v1/workspaces/${this.ws}/changes${queryString(query)}`)
  }

  async changes (since = 0, limit = 1000): Promise<ChangesResult> {
    return expectStatus<ChangesResult>(await this.changesRes({ since, limit }), 200, 'changes')
  }

  /** Every change after `since`, following pages of `limit`; throws on a non-200 or a reset. */
  async allChanges (since = 0, limit = 1000): Promise<{ head: number, changes: Change[] }> {
    const changes: Change[] = []
    let cursor = since
    let head = -1
    for (let page = 0; page < 10_000; page++) {
      const body = expectStatus<ChangesResult>(await this.changesRes({ since: cursor, limit }), 200, `changes since=${cursor}`)
      if (body.reset === true) throw new Error(`changes since=${cursor}: reset`)
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

  /** The workspace's revision from GET /v1/workspaces/{id} (a route that predates the files API). */
  async revision (): Promise<number> {
    return expectStatus<Workspace>(await this.getUrl(`/v1/workspaces/${this.ws}`), 200, 'workspace').revision
  }

  /** Asserts the workspace revision is still `before` (nothing was committed). */
  async unchanged (t: Test, before: number, what = 'nothing changed'): Promise<void> {
    t.equal(await this.revision(), before, `${what}: workspace revision still ${before}`)
  }

  /** A request sent over a real socket with the path exactly as given (app.inject and fetch would resolve `..`). */
  async raw (method: string, rawPath: string, body?: string, headers: Record<string, string> = {}): Promise<{ statusCode: number, body: string }> {
    if (!this.app.server.listening) await this.app.listen({ port: 0, host: '127.0.0.1' })
    const port = (this.app.server.address() as AddressInfo).port
    return await new Promise((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method,
        path: rawPath,
        headers: { ...this.user.auth, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }), ...headers }
      }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('error', reject)
      if (body !== undefined) req.write(body)
      req.end()
    })
  }
}

/** A fresh app (own database), a user and a workspace. */
export async function setup (t: Teardown, env: Record<string, string> = {}): Promise<Ctx> {
  const app = await build(t, env)
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  return new Ctx(app, user, ws)
}

/** Another workspace (and user, unless given) on the same app. */
export async function another (app: FastifyInstance, user?: TestUser): Promise<Ctx> {
  const u = user ?? await registerUser(app)
  return new Ctx(app, u, await createWorkspace(app, u))
}

/** The meta of a directory per the decisions: size, sha256 and mimeType present and null. */
export function dirMeta (path: string): Record<string, unknown> {
  return { path, name: path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1), kind: 'directory', size: null, sha256: null, mimeType: null, etag: DIGITS, version: Number, metadata: {}, createdAt: ISO, updatedAt: ISO }
}

/** Byte-wise (UTF-8) comparison, the order of COLLATE "C". */
export function compareBytes (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

export function statusCounts (replies: Res[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const r of replies) out[r.statusCode] = (out[r.statusCode] ?? 0) + 1
  return out
}

/** A compact summary of unexpected replies for assertion messages. */
export function describeOthers (replies: Res[], expected: number[]): string {
  return replies.filter(r => !expected.includes(r.statusCode)).slice(0, 3).map(r => `${r.statusCode} ${r.body.slice(0, 300)}`).join(' | ')
}
