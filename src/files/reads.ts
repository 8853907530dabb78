import type { Db, EntryState, Executor, FileRow } from '../db/schema.js'
import { compiledOnce } from '../db/compiled.js'
import { requirePermission, type Actor } from '../accounts/auth.js'
import { readAccess, requireRead, type WorkspaceHead } from '../accounts/workspaces.js'
import type { JsonAnswer, ReadCache } from './cache.js'
import { errors } from '../core/errors.js'
import { encodeContent } from './content.js'
import { canonicalPath, depthOf, nameOf, ROOT } from './paths.js'
import { descendantsPattern, workspaceHead } from '../db/queries.js'
import { stateOf } from './entries.js'
import { memoOf } from './entry-memo.js'
import type { Entry, FileMeta, TreeQuery, TreeResult } from '../../schemas/files.js'

/** Reading entries: single entries with content or children, and the paginated tree. */

export const MAX_CHILDREN = 10_000

/** The meta of the entry at `path` in `state` (as it is now, or as history kept it). */
export function metaOf (path: string, s: EntryState): FileMeta {
  return {
    path,
    name: nameOf(path),
    kind: s.kind,
    size: s.size,
    mimeType: s.mimeType,
    etag: String(s.etag),
    version: s.version,
    sha256: s.sha256,
    metadata: s.metadata,
    executable: s.executable === true,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    createdBy: s.createdBy,
    updatedBy: s.updatedBy
  }
}

export function toMeta (row: FileRow): FileMeta {
  return metaOf(row.path, stateOf(row))
}

const selectEntry = compiledOnce((db, workspaceId: string, path: string) =>
  db.selectFrom('files').selectAll().where('workspace_id', '=', workspaceId).where('path', '=', path))

export async function findEntry (db: Executor, workspaceId: string, path: string): Promise<FileRow | undefined> {
  // (in a group commit's transaction, what an earlier member read: ./entry-memo.ts)
  const memo = memoOf(db, workspaceId)
  if (memo !== undefined) return await memo.find(db, path)
  return (await selectEntry(db, workspaceId, path))[0]
}

/** The root is implicit (no row): a directory whose etag is the workspace revision. */
export function rootMeta (ws: WorkspaceHead): FileMeta {
  return {
    path: ROOT,
    name: '',
    kind: 'directory',
    size: null,
    mimeType: null,
    etag: String(ws.revision),
    version: 0,
    sha256: null,
    metadata: {},
    executable: false,
    createdAt: ws.createdAt,
    updatedAt: ws.createdAt,
    createdBy: ws.ownerId,
    updatedBy: ws.ownerId
  }
}

export interface ReadResult {
  entry: Entry
  /** the workspace revision the entry was read at: subscribe with `since` = this */
  revision: number
  /** the HTTP validator: a file's etag; for a directory listing, weak and tied to the revision */
  httpEtag: string
  /** the file's bytes, for ?format=raw */
  bytes?: Buffer
}

/** A file's meta, or a directory's meta with its children (one level, by name); undefined if none. */
async function loadListing (db: Db, ws: WorkspaceHead, workspaceId: string, path: string): Promise<Entry | undefined> {
  const row = path === ROOT ? undefined : await findEntry(db, workspaceId, path)
  const meta = path === ROOT ? rootMeta(ws) : row === undefined ? undefined : toMeta(row)
  if (meta === undefined || meta.kind === 'file') return meta
  const rows = await db.selectFrom('files').selectAll()
    .where('workspace_id', '=', workspaceId).where('parent', '=', path)
    .orderBy('path').limit(MAX_CHILDREN + 1).execute()
  const entry: Entry = { ...meta, children: rows.slice(0, MAX_CHILDREN).map(toMeta) }
  if (rows.length > MAX_CHILDREN) entry.childrenTruncated = true
  return entry
}

const selectBlob = compiledOnce((db, sha256: string) => db.selectFrom('blobs').select('content').where('sha256', '=', sha256))

/** A blob's bytes by sha256; undefined once nothing keeps it. */
export async function loadBlob (db: Executor, sha256: string): Promise<Buffer | undefined> {
  const [blob] = await selectBlob(db, sha256)
  return blob === undefined ? undefined : Buffer.from(blob.content.buffer, blob.content.byteOffset, blob.content.byteLength)
}

/**
 * A file with its content, or a directory with its children. One query checks access and reads
 * the revision; the entry and the bytes come from the read cache (src/files/cache.ts) when it has them.
 */
export async function readEntry (db: Db, actor: Actor, workspaceId: string, rawPath: string, cache?: ReadCache): Promise<ReadResult> {
  const path = canonicalPath(rawPath)
  const ws = await readable(db, actor, workspaceId, cache)
  return await entryAt(db, ws, workspaceId, path, cache)
}

/**
 * readEntry's answer as the read route sends it: `serialize` (the route's own serializer) writes
 * it once per revision, and the read cache keeps the bytes. Access is checked on every call, as
 * readEntry checks it, before the cache is asked.
 */
export async function readEntryJson (db: Db, actor: Actor, workspaceId: string, rawPath: string, cache: ReadCache | undefined, serialize: (entry: Entry) => string): Promise<JsonAnswer> {
  const path = canonicalPath(rawPath)
  const ws = await readable(db, actor, workspaceId, cache)
  const kept = cache?.answer(workspaceId, ws.revision, path)
  if (kept !== undefined) return kept
  const { entry, httpEtag, bytes } = await entryAt(db, ws, workspaceId, path, cache)
  const answer: JsonAnswer = { body: Buffer.from(serialize(entry)), revision: ws.revision, httpEtag, lookups: bytes === undefined ? 1 : 2 }
  cache?.keepAnswer(workspaceId, path, answer)
  return answer
}

/**
 * readEntryJson's answer when memory alone holds all of it (access, the current revision, the
 * answer), without a promise or a query: the cache-hit read. Undefined otherwise (then readEntryJson).
 */
export function keptEntryJson (actor: Actor, workspaceId: string, rawPath: string, cache: ReadCache): JsonAnswer | undefined {
  const path = canonicalPath(rawPath)
  const revision = cache.keptRevision(workspaceId, actor.userId)
  if (revision === undefined) return undefined
  requirePermission(actor, 'file.read')
  return cache.answer(workspaceId, revision, path)
}

/** The workspace's head, once the actor may read it (NOT_FOUND otherwise). */
async function readable (db: Db, actor: Actor, workspaceId: string, cache: ReadCache | undefined): Promise<WorkspaceHead> {
  const ws = cache === undefined
    ? await readAccess(db, actor, workspaceId)
    : await cache.access(workspaceId, actor.userId, async () => await readAccess(db, actor, workspaceId))
  requirePermission(actor, 'file.read')
  return ws
}

async function entryAt (db: Db, ws: WorkspaceHead, workspaceId: string, path: string, cache: ReadCache | undefined): Promise<ReadResult> {
  const load = async (): Promise<Entry | undefined> => await loadListing(db, ws, workspaceId, path)
  const listing = cache === undefined ? await load() : await cache.entry(workspaceId, ws.revision, path, load)
  if (listing === undefined) throw errors.fileNotFound(path)
  if (listing.kind === 'directory') {
    // A listing changes with its children, whose changes do not touch the directory's etag.
    return { entry: listing, revision: ws.revision, httpEtag: `W/"${listing.etag}.${ws.revision}"` }
  }
  const sha = listing.sha256 ?? ''
  const bytes = cache === undefined ? await loadBlob(db, sha) : await cache.blob(sha, async () => await loadBlob(db, sha))
  // The entry was current at `revision`; a delete committed since can leave no content to read.
  if (bytes === undefined) throw errors.fileNotFound(path)
  return { entry: { ...listing, ...encodeContent(bytes) }, revision: ws.revision, httpEtag: `"${listing.etag}"`, bytes }
}

interface TreeCursor { p: string, r: number }

function encodeCursor (c: TreeCursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url')
}

/**
 * A cursor is client input: only what encodeCursor could have made passes (a canonical path, which
 * has no NUL for PostgreSQL to refuse; a revision that is a safe integer, not 1e400 = Infinity).
 */
function decodeCursor (s: string): TreeCursor {
  try {
    // Node's decoder skips what is not base64url (`!`, padding, a trailing `+/`): only the one spelling passes.
    const bytes = Buffer.from(s, 'base64url')
    if (bytes.toString('base64url') !== s) throw errors.validation('cursor is not valid')
    const c = JSON.parse(bytes.toString('utf8')) as Partial<TreeCursor> | null
    const p = c?.p
    const r = c?.r
    if (typeof p === 'string' && canonicalPath(p) === p && typeof r === 'number' && Number.isSafeInteger(r) && r >= 0) return { p, r }
  } catch {}
  throw errors.validation('cursor is not valid')
}

/**
 * Entries below `path` (not `path` itself), sorted by path, to `depth` levels (0: all), paged
 * by keyset on the path. `revision` is read with the first page and carried by the cursor.
 */
export async function listTree (db: Db, actor: Actor, workspaceId: string, query: TreeQuery): Promise<TreeResult> {
  const path = canonicalPath(query.path)
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
  await requireRead(db, actor, workspaceId)
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const ws = await workspaceHead(trx, workspaceId)
    // Only a delete racing this read (after the access check) gets here.
    if (ws === undefined) throw errors.internal()
    if (path !== ROOT) {
      const base = await findEntry(trx, workspaceId, path)
      if (base === undefined) throw errors.fileNotFound(path)
      if (base.kind !== 'directory') throw errors.notADirectory(path)
    }
    let q = trx.selectFrom('files').selectAll().where('workspace_id', '=', workspaceId)
    if (path !== ROOT) q = q.where('path', 'like', descendantsPattern(path))
    if (query.depth > 0) q = q.where('depth', '<=', depthOf(path) + query.depth)
    if (cursor !== undefined) q = q.where('path', '>', cursor.p)
    const rows = await q.orderBy('path').limit(query.limit + 1).execute()
    const page = rows.slice(0, query.limit)
    const last = page.at(-1)
    const revision = cursor?.r ?? ws.revision
    return {
      revision,
      entries: page.map(toMeta),
      nextCursor: rows.length > query.limit && last !== undefined ? encodeCursor({ p: last.path, r: revision }) : null
    }
  })
}
