import { createHash } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import pg from 'pg'
import { Type } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BatchBody, BatchResult, Entry, TreeResult, WriteBody, WriteResult, type FileMeta } from '../schemas/files.js'
// The same row-to-JSON mapping and path helpers as the server: the baseline differs only in what
// it leaves out (auth, hooks, plugins, Kysely), never in what it answers.
import type { FileRow } from '../src/db/schema.js'
import { toMeta } from '../src/files/reads.js'
import { stateOf } from '../src/files/entries.js'
import { ancestorsOf, depthOf, parentOf } from '../src/files/paths.js'
import { makeAjv } from '../src/core/validation.js'

/**
 * The HTTP baselines: bare Fastify routes (no auth, no hooks, no plugins) with the server's own
 * request and response schemas, running the same SQL as the server's routes with raw `pg`
 * (unnamed statements, as Kysely sends them, over a pool of the server's default size).
 *
 *   GET  /s1                 the same JSON as the server's cached 1 KiB read, from memory
 *   GET  /s2/:ws/*           the uncached read: access + revision, the files row, the blob
 *   PUT  /s3/:ws/*           the write transaction of PUT with If-Match (an update)
 *   POST /s4/:ws             the transaction of a batch of creates
 *   GET  /s5/:ws?cursor=     one page of the tree, in a repeatable-read transaction
 *
 * Env: PORT, DATABASE_URL, USER_ID, SESSION_ID, ENTRY_FILE (the JSON /s1 serves).
 */

pg.types.setTypeParser(pg.types.builtins.INT8, Number)

const env = (name: string): string => {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`${name} is required`)
  return v
}
const USER = env('USER_ID')
const SESSION = env('SESSION_ID')
const ENTRY = JSON.parse(readFileSync(env('ENTRY_FILE'), 'utf8')) as Entry
const pool = new pg.Pool({ connectionString: env('DATABASE_URL'), max: 20, application_name: 'bench-baseline' })

const SQL = {
  readAccess: 'select "workspaces"."revision", "workspaces"."owner_id" as "ownerId", "workspaces"."created_at" as "createdAt" from "workspace_members" inner join "workspaces" on "workspaces"."id" = "workspace_members"."workspace_id" where "workspace_members"."workspace_id" = $1 and "workspace_members"."user_id" = $2',
  role: 'select "role" from "workspace_members" where "workspace_id" = $1 and "user_id" = $2',
  findEntry: 'select * from "files" where "workspace_id" = $1 and "path" = $2',
  blob: 'select "content" from "blobs" where "sha256" = $1',
  insertBlob: 'insert into "blobs" ("sha256", "size", "content") values ($1, $2, $3) on conflict ("sha256") do nothing returning "sha256"',
  keepBlob: 'select "sha256" from "blobs" where "sha256" = $1 for key share',
  lockWorkspace: 'select "revision", "pruned_through" from "workspaces" where "id" = $1 for update',
  headRevision: 'select "revision" from "workspaces" where "id" = $1',
  updateFile: 'update "files" set "blob_sha256" = $1, "size" = $2, "version" = $3, "etag" = $4, "updated_at" = $5, "updated_by" = $6 where "workspace_id" = $7 and "path" = $8 returning *',
  bump: 'update "workspaces" set "revision" = $1 where "id" = $2',
  ancestors: (n: number) => `select "path", "kind" from "files" where "workspace_id" = $1 and "path" in (${Array.from({ length: n }, (_, i) => `$${i + 2}`).join(', ')})`,
  treeFirst: 'select * from "files" where "workspace_id" = $1 order by "path" limit $2',
  treeAfter: 'select * from "files" where "workspace_id" = $1 and "path" > $2 order by "path" limit $3'
}

const CHANGE_COLUMNS = ['workspace_id', 'revision', 'new_path', 'etag', 'version', 'sha256', 'size', 'user_id', 'session_id', 'op_id', 'at', 'op', 'kind', 'path']
const ENTRY_COLUMNS = ['workspace_id', 'revision', 'seq', 'path_before', 'path_after', 'before', 'after', 'sha_before', 'sha_after']
const ACTIVITY_COLUMNS = ['session_id', 'user_id', 'workspace_id', 'at', 'type', 'op', 'path', 'new_path', 'status', 'code', 'revision', 'duration_ms', 'details']
const FILE_COLUMNS = ['workspace_id', 'path', 'parent', 'depth', 'kind', 'blob_sha256', 'size', 'mime_type', 'metadata', 'etag', 'created_at', 'updated_at', 'created_by', 'updated_by']

/** `insert into "t" (cols) values ($1, …), (…)` for rows of values in column order. */
async function insertRows (client: pg.PoolClient, table: string, columns: string[], rows: unknown[][], returning = false): Promise<pg.QueryResult> {
  const params: unknown[] = []
  const tuples = rows.map(row => `(${row.map(v => { params.push(v); return `$${params.length}` }).join(', ')})`)
  return await client.query(`insert into "${table}" (${columns.map(c => `"${c}"`).join(', ')}) values ${tuples.join(', ')}${returning ? ' returning *' : ''}`, params)
}

/** The server's saveChanges: changes, entries and the head in one statement when they fit. */
async function recordChanges (client: pg.PoolClient, ws: string, changes: unknown[][], entries: unknown[][], head: number): Promise<void> {
  if (changes.length <= 500 && entries.length > 0 && entries.length <= 500) {
    const params: unknown[] = []
    const values = (rows: unknown[][]): string => rows.map(row => `(${row.map(v => { params.push(v); return `$${params.length}` }).join(', ')})`).join(', ')
    const cols = (columns: string[]): string => columns.map(c => `"${c}"`).join(', ')
    const c = values(changes)
    const e = values(entries)
    params.push(head, ws)
    await client.query(`with "c" as (insert into "changes" (${cols(CHANGE_COLUMNS)}) values ${c} returning "revision"), ` +
      `"e" as (insert into "change_entries" (${cols(ENTRY_COLUMNS)}) values ${e} returning "seq") ` +
      `update "workspaces" set "revision" = $${params.length - 1} where "id" = $${params.length}`, params)
    return
  }
  for (let i = 0; i < changes.length; i += 500) await insertRows(client, 'changes', CHANGE_COLUMNS, changes.slice(i, i + 500))
  for (let i = 0; i < entries.length; i += 500) await insertRows(client, 'change_entries', ENTRY_COLUMNS, entries.slice(i, i + 500))
  await client.query(SQL.bump, [head, ws])
}

class HttpError extends Error {
  constructor (readonly statusCode: number, message: string) { super(message) }
}

async function requireRole (workspaceId: string, roles: string[]): Promise<void> {
  const role = (await pool.query<{ role: string }>(SQL.role, [workspaceId, USER])).rows[0]?.role
  if (role === undefined || !roles.includes(role)) throw new HttpError(404, 'workspace not found')
}

/** BEGIN … COMMIT on one pooled client; ROLLBACK on any error. */
async function transaction<T> (begin: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query(begin)
    const result = await work(client)
    await client.query('commit')
    return result
  } catch (err) {
    await client.query('rollback').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

function content (text: string): { bytes: Buffer, sha256: string, size: number } {
  if (!text.isWellFormed()) throw new HttpError(400, 'content is not valid Unicode')
  const bytes = Buffer.from(text, 'utf8')
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length }
}

async function storeBlob (client: pg.PoolClient, c: { bytes: Buffer, sha256: string, size: number }): Promise<void> {
  const inserted = await client.query(SQL.insertBlob, [c.sha256, c.size, c.bytes])
  if (inserted.rowCount === 0) await client.query(SQL.keepBlob, [c.sha256])
}

async function activity (client: pg.PoolClient, workspaceId: string, type: string, op: string | null, path: string | null, revision: number, started: number, details: Record<string, unknown> | null): Promise<void> {
  await insertRows(client, 'activity', ACTIVITY_COLUMNS, [[SESSION, USER, workspaceId, new Date(), type, op, path, null, 200, null, revision,
    Math.round(performance.now() - started), details === null ? null : JSON.stringify(details)]])
}

const app = Fastify({ logger: false, bodyLimit: 21 * 1024 * 1024 }).withTypeProvider<TypeBoxTypeProvider>()
// The server's validators (plugins/app/error-handler.ts): strict bodies, coerced strings elsewhere,
// and the schemas' own keywords.
const strict = makeAjv({ coerceTypes: false })
const coercing = makeAjv({ coerceTypes: 'array' })
app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema))
app.setErrorHandler(function onError (err: Error & { statusCode?: number }, _request, reply) {
  void reply.code(err.statusCode ?? 500).send({ statusCode: err.statusCode ?? 500, message: err.message })
})
const Params = Type.Object({ ws: Type.String(), '*': Type.Optional(Type.String()) })

app.get('/health', async function health () { return { status: 'ok' } })

app.get('/s1', { schema: { response: { 200: Entry } } }, async function cachedRead (_request, reply) {
  void reply.header('etag', `"${ENTRY.etag}"`)
  return ENTRY
})

app.get('/s2/:ws/*', { schema: { params: Params, response: { 200: Entry } } }, async function uncachedRead (request, reply) {
  const ws = request.params.ws
  const path = '/' + (request.params['*'] ?? '')
  const head = (await pool.query<{ revision: number }>(SQL.readAccess, [ws, USER])).rows[0]
  if (head === undefined) throw new HttpError(404, 'workspace not found')
  const row = (await pool.query<FileRow>(SQL.findEntry, [ws, path])).rows[0]
  if (row === undefined || row.blob_sha256 === null) throw new HttpError(404, 'file not found')
  const blob = (await pool.query<{ content: Buffer }>(SQL.blob, [row.blob_sha256])).rows[0]
  if (blob === undefined) throw new HttpError(404, 'file not found')
  const text = isUtf8(blob.content) ? { content: blob.content.toString('utf8'), encoding: 'utf8' as const } : { content: blob.content.toString('base64'), encoding: 'base64' as const }
  void reply.header('etag', `"${row.etag}"`).header('x-revision', String(head.revision))
  return { ...toMeta(row), ...text }
})

const WriteHeaders = Type.Object({ 'if-match': Type.String() })

app.put('/s3/:ws/*', { schema: { params: Params, headers: WriteHeaders, body: WriteBody, response: { 200: WriteResult } } }, async function write (request, reply) {
  const started = performance.now()
  const ws = request.params.ws
  const path = '/' + (request.params['*'] ?? '')
  const ifMatch = request.headers['if-match'].replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
  const c = content(request.body.content)
  await requireRole(ws, ['owner', 'editor'])
  const body = await transaction('begin', async client => {
    await storeBlob(client, c)
    const head = (await client.query<{ revision: number }>(SQL.lockWorkspace, [ws])).rows[0]?.revision
    if (head === undefined) throw new HttpError(404, 'workspace not found')
    const existing = (await client.query<FileRow>(SQL.findEntry, [ws, path])).rows[0]
    if (existing === undefined || String(existing.etag) !== ifMatch) throw new HttpError(412, 'precondition failed')
    const revision = head + 1
    const now = new Date()
    const row = (await client.query<FileRow>(SQL.updateFile, [c.sha256, c.size, existing.version + 1, revision, now, USER, ws, path])).rows[0]
    if (row === undefined) throw new HttpError(500, 'no row')
    await recordChanges(client, ws,
      [[ws, revision, null, revision, row.version, row.blob_sha256, row.size, USER, SESSION, null, now, 'update', 'file', path]],
      [[ws, revision, 0, path, path, JSON.stringify(stateOf(existing)), JSON.stringify(stateOf(row)), existing.blob_sha256, row.blob_sha256]],
      revision)
    await activity(client, ws, 'file.write', 'write', path, revision, started, null)
    return { file: toMeta(row), revision }
  })
  void reply.header('etag', `"${body.file.etag}"`)
  return body
})

app.post('/s4/:ws', { schema: { params: Params, body: BatchBody, response: { 200: BatchResult } } }, async function batch (request) {
  const started = performance.now()
  const ws = request.params.ws
  const ops = request.body.operations.map(op => {
    if (op.type !== 'create') throw new HttpError(400, 'this baseline only creates')
    return { path: op.path, content: content(op.content ?? '') }
  })
  await requireRole(ws, ['owner', 'editor'])
  return await transaction('begin', async client => {
    const unique = new Map(ops.map(op => [op.content.sha256, op.content]))
    for (const c of unique.values()) await storeBlob(client, c)
    const locked = (await client.query<{ revision: number }>(SQL.lockWorkspace, [ws])).rows[0]?.revision
    if (locked === undefined) throw new HttpError(404, 'workspace not found')
    let head: number = locked
    const changes: unknown[][] = []
    const entries: unknown[][] = []
    const results: Array<{ data: FileMeta, revision: number }> = []
    for (const op of ops) {
      const revision: number = head + 1
      const now = new Date()
      if ((await client.query(SQL.findEntry, [ws, op.path])).rowCount !== 0) throw new HttpError(409, 'file exists')
      const ancestors = ancestorsOf(op.path)
      const have = new Set<string>()
      if (ancestors.length > 0) {
        const found = await client.query<{ path: string, kind: string }>(SQL.ancestors(ancestors.length), [ws, ...ancestors])
        for (const r of found.rows) {
          if (r.kind === 'file') throw new HttpError(409, 'not a directory')
          have.add(r.path)
        }
      }
      const missing = ancestors.filter(a => !have.has(a))
      let seq = 0
      if (missing.length > 0) {
        await insertRows(client, 'files', FILE_COLUMNS, missing.map(p => [ws, p, parentOf(p), depthOf(p), 'directory', null, null, null, '{}', revision, now, now, USER, USER]))
        for (const p of missing) {
          const state = { kind: 'directory', sha256: null, size: null, mimeType: null, metadata: {}, version: 1, etag: revision, createdAt: now.toISOString(), createdBy: USER, updatedAt: now.toISOString(), updatedBy: USER }
          entries.push([ws, revision, seq++, null, p, null, JSON.stringify(state), null, null])
        }
      }
      const inserted = await insertRows(client, 'files', FILE_COLUMNS, [[ws, op.path, parentOf(op.path), depthOf(op.path), 'file', op.content.sha256, op.content.size, 'text/plain', '{}', revision, now, now, USER, USER]], true)
      const row = inserted.rows[0] as FileRow
      entries.push([ws, revision, seq, null, op.path, null, JSON.stringify(stateOf(row)), null, row.blob_sha256])
      changes.push([ws, revision, null, revision, row.version, row.blob_sha256, row.size, USER, SESSION, null, now, 'create', 'file', op.path])
      results.push({ data: toMeta(row), revision })
      head = revision
    }
    await recordChanges(client, ws, changes, entries, head)
    await activity(client, ws, 'batch', null, null, head, started, { operations: ops.length, changes: changes.length })
    return { results, revision: head }
  })
})

const TreeQuery = Type.Object({ limit: Type.Integer({ default: 1000 }), cursor: Type.Optional(Type.String()) })

app.get('/s5/:ws', { schema: { params: Params, querystring: TreeQuery, response: { 200: TreeResult } } }, async function tree (request) {
  const ws = request.params.ws
  const { limit } = request.query
  const cursor = request.query.cursor === undefined ? undefined : JSON.parse(Buffer.from(request.query.cursor, 'base64url').toString('utf8')) as { p: string, r: number }
  await requireRole(ws, ['owner', 'editor', 'viewer'])
  return await transaction('start transaction isolation level repeatable read', async client => {
    const head = (await client.query<{ revision: number }>(SQL.headRevision, [ws])).rows[0]?.revision ?? 0
    const rows = (cursor === undefined
      ? await client.query<FileRow>(SQL.treeFirst, [ws, limit + 1])
      : await client.query<FileRow>(SQL.treeAfter, [ws, cursor.p, limit + 1])).rows
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    const revision = cursor?.r ?? head
    return {
      revision,
      entries: page.map(toMeta),
      nextCursor: rows.length > limit && last !== undefined ? Buffer.from(JSON.stringify({ p: last.path, r: revision })).toString('base64url') : null
    }
  })
})

await app.listen({ port: Number(process.env.PORT ?? 3100), host: process.env.HOST ?? '127.0.0.1' })
process.once('SIGTERM', () => { void app.close().then(async () => { await pool.end() }) })
