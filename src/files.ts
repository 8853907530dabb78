import type { Db, Executor, FileRow } from './db/schema.js'
import type { Actor } from './auth.js'
import { requireRead } from './workspaces.js'
import { errors } from './errors.js'
import { encodeContent } from './content.js'
import { canonicalPath, depthOf, descendantsPattern, nameOf, ROOT } from './paths.js'
import type { Entry, FileMeta, TreeQuery } from '../schemas/files.js'

/** Reading entries: single entries with content or children, and the paginated tree. */

export const MAX_CHILDREN = 10_000

export function toMeta (row: FileRow): FileMeta {
  return {
    path: row.path,
    name: nameOf(row.path),
    kind: row.kind,
    size: row.size,
    mimeType: row.mime_type,
    etag: String(row.etag),
    version: row.version,
    sha256: row.blob_sha256,
    metadata: row.metadata,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
    updatedBy: row.updated_by
  }
}

export async function findEntry (db: Executor, workspaceId: string, path: string): Promise<FileRow | undefined> {
  return await db.selectFrom('files').selectAll().where('workspace_id', '=', workspaceId).where('path', '=', path).executeTakeFirst()
}

/** The root is implicit (no row): a directory whose etag is the workspace revision. */
function rootMeta (ws: { revision: number, owner_id: string, created_at: Date }): FileMeta {
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
    createdAt: ws.created_at,
    updatedAt: ws.created_at,
    createdBy: ws.owner_id,
    updatedBy: ws.owner_id
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

/** A file with its content, or a directory with its children (one level, by name). */
export async function readEntry (db: Db, actor: Actor, workspaceId: string, rawPath: string): Promise<ReadResult> {
  const path = canonicalPath(rawPath)
  await requireRead(db, actor, workspaceId)
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const ws = await trx.selectFrom('workspaces').select(['revision', 'owner_id', 'created_at']).where('id', '=', workspaceId).executeTakeFirst()
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    const row = path === ROOT ? undefined : await findEntry(trx, workspaceId, path)
    const meta = path === ROOT ? rootMeta(ws) : row === undefined ? undefined : toMeta(row)
    if (meta === undefined) throw errors.fileNotFound(path)
    if (meta.kind === 'directory') {
      const rows = await trx.selectFrom('files').selectAll()
        .where('workspace_id', '=', workspaceId).where('parent', '=', path)
        .orderBy('path').limit(MAX_CHILDREN + 1).execute()
      const entry: Entry = { ...meta, children: rows.slice(0, MAX_CHILDREN).map(toMeta) }
      if (rows.length > MAX_CHILDREN) entry.childrenTruncated = true
      // A listing changes with its children, whose changes do not touch the directory's etag.
      return { entry, revision: ws.revision, httpEtag: `W/"${meta.etag}.${ws.revision}"` }
    }
    const blob = await trx.selectFrom('blobs').select('content').where('sha256', '=', meta.sha256 ?? '').executeTakeFirstOrThrow()
    const bytes = Buffer.from(blob.content.buffer, blob.content.byteOffset, blob.content.byteLength)
    return { entry: { ...meta, ...encodeContent(bytes) }, revision: ws.revision, httpEtag: `"${meta.etag}"`, bytes }
  })
}

interface TreeCursor { p: string, r: number }

function encodeCursor (c: TreeCursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url')
}

function decodeCursor (s: string): TreeCursor {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Partial<TreeCursor>
    if (typeof c.p === 'string' && typeof c.r === 'number') return { p: c.p, r: c.r }
  } catch {}
  throw errors.validation('cursor is not valid')
}

export interface TreePage {
  revision: number
  entries: FileMeta[]
  nextCursor: string | null
}

/**
 * Entries below `path` (not `path` itself), sorted by path, to `depth` levels (0: all), paged
 * by keyset on the path. `revision` is read with the first page and carried by the cursor.
 */
export async function listTree (db: Db, actor: Actor, workspaceId: string, query: TreeQuery): Promise<TreePage> {
  const path = canonicalPath(query.path)
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
  await requireRead(db, actor, workspaceId)
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const ws = await trx.selectFrom('workspaces').select('revision').where('id', '=', workspaceId).executeTakeFirstOrThrow()
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
