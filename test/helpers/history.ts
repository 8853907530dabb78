import { randomUUID } from 'node:crypto'
import type { Ctx } from './files.js'
import { expectStatus, type ActivityRecord, type ActivityPage, type Change, type FileMeta, type HistoryResult, type TreeResult } from './http.js'

/** Shared helpers for the session-continuity tests: activity, idempotency, history, revert. */

export const newSession = (): string => randomUUID()

/** Every activity entry of a session (all pages). */
export async function allActivity (ctx: Ctx, sid: string, headers: Record<string, string> = ctx.user.auth): Promise<ActivityRecord[]> {
  const items: ActivityRecord[] = []
  let cursor: string | null = null
  for (let i = 0; i < 100; i++) {
    const res = await ctx.getUrl(`/v1/sessions/${sid}/activity?limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`, headers)
    const page: ActivityPage = expectStatus<ActivityPage>(res, 200, `activity ${sid}`)
    items.push(...page.items)
    cursor = page.nextCursor
    if (cursor === null) return items
  }
  throw new Error('activity: too many pages')
}

/** Every change that touched a path, following moves (all pages). */
export async function allHistory (ctx: Ctx, path: string, limit = 100): Promise<{ items: Change[], pages: number }> {
  const items: Change[] = []
  let cursor: string | null = null
  for (let pages = 1; pages < 100; pages++) {
    const res = await ctx.getUrl(`/v1/workspaces/${ctx.ws}/history${path}?limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`)
    const page = expectStatus<HistoryResult>(res, 200, `history ${path}`)
    items.push(...page.items)
    cursor = page.nextCursor
    if (cursor === null) return { items, pages }
  }
  throw new Error('history: too many pages')
}

/** What a careful client would call "the workspace": every entry's path, kind, meta and bytes. */
export interface SnapshotEntry {
  kind: 'file' | 'directory'
  mimeType: string | null
  metadata: Record<string, unknown>
  size: number | null
  sha256: string | null
  /** base64 of the bytes read back with ?format=raw (files only) */
  bytes: string | null
}
export type Snapshot = Record<string, SnapshotEntry>

export async function snapshot (ctx: Ctx): Promise<Snapshot> {
  const entries: FileMeta[] = []
  let cursor: string | null = null
  do {
    const res = await ctx.treeRes({ path: '/', depth: 0, limit: 1000, ...(cursor === null ? {} : { cursor }) })
    const page = expectStatus<TreeResult>(res, 200, 'tree')
    entries.push(...page.entries)
    cursor = page.nextCursor
  } while (cursor !== null)
  const snap: Snapshot = {}
  for (const e of entries) {
    let bytes: string | null = null
    if (e.kind === 'file') {
      const raw = await ctx.bytes(e.path)
      if (raw === null) throw new Error(`could not read ${e.path}`)
      bytes = raw.toString('base64')
    }
    snap[e.path] = { kind: e.kind, mimeType: e.mimeType, metadata: e.metadata, size: e.size, sha256: e.sha256, bytes }
  }
  return snap
}

/** Bytes that are not valid UTF-8, so they travel as base64. */
export function binary (seed: number, length = 64): Buffer {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i++) b[i] = (seed * 31 + i * 7 + 0x80) & 0xff
  b[0] = 0xff
  b[1] = 0xfe
  return b
}

/** What a client knows of an entry from the change feed alone. */
export interface ReplicaEntry { kind: 'file' | 'directory', sha256: string | null }

/**
 * A client's copy of the workspace built from the change feed only, applying each change as the
 * contract describes: create/update/mkdir (missing parents too), delete (with everything under
 * it), move and copy (of everything under it, over what is at the target).
 */
export function replicate (changes: Change[]): Map<string, ReplicaEntry> {
  const tree = new Map<string, ReplicaEntry>()
  const within = (path: string, dir: string): boolean => path === dir || path.startsWith(dir + '/')
  const parents = (path: string): void => {
    for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) tree.set(path.slice(0, i), { kind: 'directory', sha256: null })
  }
  const drop = (dir: string): void => { for (const p of [...tree.keys()]) if (within(p, dir)) tree.delete(p) }
  for (const c of changes) {
    switch (c.op) {
      case 'create':
      case 'update':
      case 'mkdir':
        parents(c.path)
        tree.set(c.path, c.kind === 'directory' ? { kind: 'directory', sha256: null } : { kind: 'file', sha256: c.sha256 })
        break
      case 'delete':
        drop(c.path)
        break
      case 'move':
      case 'copy': {
        const to = c.newPath ?? ''
        const moving = [...tree.entries()].filter(([p]) => within(p, c.path))
        if (c.op === 'move') drop(c.path)
        drop(to)
        parents(to)
        for (const [p, e] of moving) tree.set(to + p.slice(c.path.length), e)
        break
      }
    }
  }
  return tree
}

/** The server's tree in the replica's terms: every entry's kind and sha256. */
export function asReplica (snap: Snapshot): Map<string, ReplicaEntry> {
  return new Map(Object.entries(snap).map(([path, e]) => [path, { kind: e.kind, sha256: e.sha256 }]))
}
