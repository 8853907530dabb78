import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { build, createWorkspace, registerUser, type TestUser } from './app.js'

/** Shared helpers for the files API tests (files-*.test.ts). */

export type Res = LightMyRequestResponse

export interface Meta {
  path: string
  name: string
  kind: 'file' | 'directory'
  size: number | null
  mimeType: string | null
  etag: string
  version: number
  sha256: string | null
  metadata: Record<string, unknown>
  createdAt: string
  updatedAt: string
  createdBy: string
  updatedBy: string
}

export interface FileBody extends Meta { content: string, encoding: 'utf8' | 'base64' }
export interface DirBody extends Meta { children: Meta[] }
export interface WriteBody { file: Meta, revision: number }
export interface DeleteBody { revision: number, deleted: number }
export interface OpBody { success: true, data: Meta | { deleted: number }, revision: number, timestamp: string }
export interface BatchBody { results: Array<{ data: Meta | { deleted: number }, revision: number }>, revision: number }
export interface TreeBody { revision: number, entries: Meta[], nextCursor: string | null }
export interface Change {
  revision: number
  op: string
  kind: 'file' | 'directory'
  path: string
  newPath: string | null
  etag: string | null
  version: number | null
  sha256: string | null
  size: number | null
  userId: string
  sessionId: string
  opId: string | null
  at: string
}
export interface ChangesBody { head: number, changes: Change[], reset?: boolean }
export interface ErrBody { statusCode: number, code: string, error: string, message: string, details?: Record<string, unknown> }

export interface Op {
  type: string
  path?: string
  newPath?: string
  content?: string
  encoding?: string
  mimeType?: string
  metadata?: Record<string, unknown>
  ifMatch?: string
  overwrite?: boolean
  sessionId?: string
}

export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
export const DIGITS = /^\d+$/

export const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

/** `/src/a b.ts` → `src/a%20b.ts`: each segment percent-encoded on its own. */
export function encodePath (path: string): string {
  return path.split('/').slice(1).map(s => encodeURIComponent(s)).join('/')
}

interface Teardown { teardown: (fn: () => unknown) => void }

/** A node-tap test, so helpers can assert. */
export type Asserts = Test

/** A user and a workspace of theirs, with a request method for each route under test. */
export class Ctx {
  constructor (readonly app: FastifyInstance, readonly user: TestUser, readonly ws: string) {}

  filesUrl (path: string, ws = this.ws): string {
    return `/v1/workspaces/${ws}/files/${encodePath(path)}`
  }

  /** PUT with a JSON body (object) or a raw string body with the given content type. */
  async put (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
    return await this.putUrl(this.filesUrl(path), body, headers)
  }

  async putUrl (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
    const payload = typeof body === 'string' ? body : JSON.stringify(body)
    return await this.app.inject({
      method: 'PUT', url, payload, headers: { 'content-type': 'application/json', ...this.user.auth, ...headers }
    })
  }

  async write (path: string, content: string, extra: Record<string, unknown> = {}): Promise<WriteBody> {
    const res = await this.put(path, { content, ...extra })
    if (res.statusCode !== 200 && res.statusCode !== 201) throw new Error(`write ${path}: ${res.statusCode} ${res.body}`)
    return res.json<WriteBody>()
  }

  async get (path: string, query = '', headers: Record<string, string> = {}): Promise<Res> {
    return await this.getUrl(this.filesUrl(path) + query, headers)
  }

  async getUrl (url: string, headers: Record<string, string> = {}): Promise<Res> {
    return await this.app.inject({ method: 'GET', url, headers: { ...this.user.auth, ...headers } })
  }

  async read (path: string): Promise<FileBody> {
    const res = await this.get(path)
    if (res.statusCode !== 200) throw new Error(`read ${path}: ${res.statusCode} ${res.body}`)
    return res.json<FileBody>()
  }

  /** The bytes of a file (via ?format=raw), or null when the GET is not 200. */
  async bytes (path: string): Promise<Buffer | null> {
    const res = await this.get(path, '?format=raw')
    return res.statusCode === 200 ? res.rawPayload : null
  }

  async del (path: string, headers: Record<string, string> = {}): Promise<Res> {
    return await this.app.inject({ method: 'DELETE', url: this.filesUrl(path), headers: { ...this.user.auth, ...headers } })
  }

  async op (op: Op | Record<string, unknown>, headers: Record<string, string> = {}): Promise<Res> {
    return await this.app.inject({ method: 'POST', url: `/v1/workspaces/${this.ws}/operations`, payload: op, headers: { ...this.user.auth, ...headers } })
  }

  async batch (operations: Array<Op | Record<string, unknown>>, headers: Record<string, string> = {}): Promise<Res> {
    return await this.app.inject({ method: 'POST', url: `/v1/workspaces/${this.ws}/operations/batch`, payload: { operations }, headers: { ...this.user.auth, ...headers } })
  }

  async mkdir (path: string): Promise<OpBody> {
    const res = await this.op({ type: 'mkdir', path })
    if (res.statusCode !== 200) throw new Error(`mkdir ${path}: ${res.statusCode} ${res.body}`)
    return res.json<OpBody>()
  }

  async treeRes (query: Record<string, string | number>): Promise<Res> {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
    return await this.app.inject({ method: 'GET', url: `/v1/workspaces/${this.ws}/tree${qs === '' ? '' : '?' + qs}`, headers: this.user.auth })
  }

  async tree (path = '/', depth = 0, limit = 5000): Promise<TreeBody> {
    const res = await this.treeRes({ path, depth, limit })
    if (res.statusCode !== 200) throw new Error(`tree ${path}: ${res.statusCode} ${res.body}`)
    return res.json<TreeBody>()
  }

  /** Every path in the workspace (depth 0, all pages). */
  async allPaths (path = '/'): Promise<string[]> {
    return (await this.tree(path, 0, 5000)).entries.map(e => e.path)
  }

  async changesRes (query: Record<string, string | number>): Promise<Res> {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
    return await this.app.inject({ method: 'GET', url: `/v1/workspaces/${this.ws}/changes${qs === '' ? '' : '?' + qs}`, headers: this.user.auth })
  }

  async changes (since = 0, limit = 1000): Promise<ChangesBody> {
    const res = await this.changesRes({ since, limit })
    if (res.statusCode !== 200) throw new Error(`changes: ${res.statusCode} ${res.body}`)
    return res.json<ChangesBody>()
  }

  /** The workspace's revision from GET /v1/workspaces/{id} (a route that predates the files API). */
  async revision (): Promise<number> {
    const res = await this.app.inject({ method: 'GET', url: `/v1/workspaces/${this.ws}`, headers: this.user.auth })
    if (res.statusCode !== 200) throw new Error(`workspace: ${res.statusCode} ${res.body}`)
    return res.json<{ revision: number }>().revision
  }

  /** Asserts the workspace revision is still `before` (nothing was committed). */
  async unchanged (t: Asserts, before: number, what = 'nothing changed'): Promise<void> {
    t.equal(await this.revision(), before, `${what}: workspace revision still ${before}`)
  }

  /** A request sent over a real socket with the path exactly as given (app.inject would resolve `..`). */
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

/** Asserts a response is the contract's error shape with this status and code. */
export function isError (t: Asserts, res: Res, statusCode: number, code: string, message = ''): boolean {
  const label = `${message}${message === '' ? '' : ': '}${statusCode} ${code}`
  const okStatus = t.equal(res.statusCode, statusCode, `${label} (status; body ${res.body.slice(0, 300)})`)
  let body: unknown
  try {
    body = res.json()
  } catch {
    body = res.body
  }
  const okBody = t.match(body, { statusCode, code, error: String, message: String }, `${label} (error body)`)
  return okStatus && okBody
}

/** The meta of a directory per the decisions: size, sha256 and mimeType present and null. */
export function dirMeta (path: string): Record<string, unknown> {
  return { path, name: path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1), kind: 'directory', size: null, sha256: null, mimeType: null, etag: DIGITS, version: Number, metadata: {}, createdAt: ISO, updatedAt: ISO }
}

export function errBody (res: Res): ErrBody {
  return res.json<ErrBody>()
}
