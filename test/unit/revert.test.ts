import { createHash, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { Db } from '../../src/db/schema.js'
import type { Actor } from '../../src/accounts/auth.js'
import { AppError } from '../../src/core/errors.js'
import { applyOperations, type OpInput } from '../../src/files/operations.js'
import { revert } from '../../src/files/revert.js'
import { build, createWorkspace, registerUser } from '../helpers/app.js'

/**
 * How revert inverts a session's changes (src/files/revert.ts), called directly on a real
 * database: each case writes as two sessions of one user, reverts one of them, and checks the
 * inverse changes and what the workspace holds afterwards.
 */

const sha = (text: string): string => createHash('sha256').update(text).digest('hex')

interface Ctx {
  db: Db
  ws: string
  /** the session whose changes are reverted */
  mine: Actor
  /** another session of the same user */
  other: Actor
  apply: (actor: Actor, ...ops: OpInput[]) => Promise<number>
  /** path → kind, sha256, version and metadata of every entry in the workspace */
  files: () => Promise<Record<string, { kind: string, sha256: string | null, version: number, metadata: Record<string, unknown> }>>
  head: () => Promise<number>
}

async function setup (t: Test): Promise<Ctx> {
  const app = await build(t)
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  const actor = (sessionId: string): Actor => ({ userId: user.id, sessionId, permissions: ['file.read', 'file.write'] })
  const db = app.db
  return {
    db,
    ws,
    mine: actor(randomUUID()),
    other: actor(randomUUID()),
    apply: async (who, ...ops) => (await applyOperations(db, who, ws, ops, { maxFileBytes: 1024 * 1024 })).revision,
    files: async () => {
      const rows = await db.selectFrom('files').select(['path', 'kind', 'blob_sha256', 'version', 'metadata']).where('workspace_id', '=', ws).orderBy('path').execute()
      return Object.fromEntries(rows.map(r => [r.path, { kind: r.kind, sha256: r.blob_sha256, version: r.version, metadata: r.metadata }]))
    },
    head: async () => (await db.selectFrom('workspaces').select('revision').where('id', '=', ws).executeTakeFirstOrThrow()).revision
  }
}

/** The parts of a change that say what it does. */
const shape = (c: { revision: number, op: string, kind: string, path: string, newPath: string | null }) =>
  ({ revision: c.revision, op: c.op, kind: c.kind, path: c.path, newPath: c.newPath })

t.test('a create is undone by a delete, a delete by a create of what was there', async t => {
  const c = await setup(t)
  await c.apply(c.other, { type: 'create', path: '/kept.txt', content: 'kept', metadata: { a: 1 } })
  await c.apply(c.mine, { type: 'create', path: '/new.txt', content: 'new' })
  await c.apply(c.mine, { type: 'delete', path: '/kept.txt' })
  t.same(Object.keys(await c.files()), ['/new.txt'])

  const result = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId })
  t.same(result.changes.map(shape), [
    { revision: 4, op: 'create', kind: 'file', path: '/kept.txt', newPath: null },
    { revision: 5, op: 'delete', kind: 'file', path: '/new.txt', newPath: null }
  ], 'newest first: the delete is undone, then the create')
  t.equal(result.revision, 5)
  t.same(result.conflicts, [])
  t.equal(result.changes[0]?.sha256, sha('kept'), 'the create carries the old content')
  t.equal(result.changes[0]?.sessionId, c.mine.sessionId, 'made by the reverting session')
  t.same(await c.files(), { '/kept.txt': { kind: 'file', sha256: sha('kept'), version: 2, metadata: { a: 1 } } },
    'the deleted file is back with its content and metadata, its version moved on')
  t.equal(await c.head(), 5)
})

t.test('an update is undone by an update back to the old content, type and metadata', async t => {
  const c = await setup(t)
  await c.apply(c.other, { type: 'create', path: '/f.txt', content: 'one', mimeType: 'text/plain', metadata: { v: 1 } })
  await c.apply(c.mine, { type: 'update', path: '/f.txt', content: 'two', mimeType: 'text/markdown', metadata: { v: 2 } })
  const result = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId })
  t.same(result.changes.map(shape), [{ revision: 3, op: 'update', kind: 'file', path: '/f.txt', newPath: null }])
  t.equal(result.changes[0]?.sha256, sha('one'))
  t.equal(result.changes[0]?.version, 3, 'the version keeps counting up')
  const row = await c.db.selectFrom('files').select(['blob_sha256', 'mime_type', 'metadata', 'version', 'etag']).where('workspace_id', '=', c.ws).where('path', '=', '/f.txt').executeTakeFirstOrThrow()
  t.same(row, { blob_sha256: sha('one'), mime_type: 'text/plain', metadata: { v: 1 }, version: 3, etag: 3 })
})

t.test('a directory move is undone by one move back', async t => {
  const c = await setup(t)
  await c.apply(c.other, { type: 'create', path: '/src/a.txt', content: 'a' }, { type: 'create', path: '/src/lib/b.txt', content: 'b' })
  await c.apply(c.mine, { type: 'move', path: '/src', newPath: '/dst' })
  t.same(Object.keys(await c.files()), ['/dst', '/dst/a.txt', '/dst/lib', '/dst/lib/b.txt'])
  const result = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId })
  t.same(result.changes.map(shape), [{ revision: 4, op: 'move', kind: 'directory', path: '/dst', newPath: '/src' }], 'one change')
  const files = await c.files()
  t.same(Object.keys(files), ['/src', '/src/a.txt', '/src/lib', '/src/lib/b.txt'], 'everything back where it was')
  t.equal(files['/src/lib/b.txt']?.sha256, sha('b'))
  const entries = await c.db.selectFrom('change_entries').select(['path_before', 'path_after']).where('workspace_id', '=', c.ws).where('revision', '=', 4).orderBy('seq').execute()
  t.equal(entries.length, 8, 'its entries: four removed under /dst, four put back under /src')
})

t.test('changes are undone newest first: a path freed by undoing a later change lets a move go back', async t => {
  const c = await setup(t)
  await c.apply(c.other, { type: 'create', path: '/a.txt', content: 'a' })
  await c.apply(c.mine, { type: 'move', path: '/a.txt', newPath: '/b.txt' })
  await c.apply(c.mine, { type: 'create', path: '/a.txt', content: 'again' })
  const result = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId })
  // The newest change first: its /a.txt goes, then the move is undone as a move.
  t.same(result.changes.map(shape), [
    { revision: 4, op: 'delete', kind: 'file', path: '/a.txt', newPath: null },
    { revision: 5, op: 'move', kind: 'file', path: '/b.txt', newPath: '/a.txt' }
  ])
  t.same(Object.keys(await c.files()), ['/a.txt'])
  t.equal((await c.files())['/a.txt']?.sha256, sha('a'))
})

t.test('what a copy placed under a directory is removed as one delete of the directory', async t => {
  const c = await setup(t)
  await c.apply(c.other, { type: 'create', path: '/src/a.txt', content: 'a' }, { type: 'create', path: '/src/sub/b.txt', content: 'b' })
  await c.apply(c.mine, { type: 'copy', path: '/src', newPath: '/copy' })
  const result = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId })
  t.same(result.changes.map(shape), [{ revision: 4, op: 'delete', kind: 'directory', path: '/copy', newPath: null }], 'one delete')
  const entries = await c.db.selectFrom('change_entries').select(['path_before', 'path_after']).where('workspace_id', '=', c.ws).where('revision', '=', 4).orderBy('seq').execute()
  t.same(entries.map(e => e.path_before).sort(), ['/copy', '/copy/a.txt', '/copy/sub', '/copy/sub/b.txt'], 'every removed entry is in that change')
  t.ok(entries.every(e => e.path_after === null))
  t.same(Object.keys(await c.files()), ['/src', '/src/a.txt', '/src/sub', '/src/sub/b.txt'])
})

t.test('a path another session changed afterwards is a conflict', async t => {
  const c = await setup(t)
  await c.apply(c.other, { type: 'create', path: '/shared.txt', content: 'v1' })
  await c.apply(c.mine, { type: 'update', path: '/shared.txt', content: 'v2' })
  await c.apply(c.mine, { type: 'create', path: '/mine.txt', content: 'm' })
  await c.apply(c.other, { type: 'update', path: '/shared.txt', content: 'v3' })

  const refused = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId }).then(() => undefined, (err: unknown) => err)
  t.ok(refused instanceof AppError, 'refused')
  if (refused instanceof AppError) {
    t.equal(refused.code, 'REVERT_CONFLICT')
    t.equal(refused.statusCode, 409)
    t.same(refused.details, { paths: ['/shared.txt'] })
  }
  t.equal(await c.head(), 4, 'nothing applied')

  const dry = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId, force: true, dryRun: true })
  t.same(dry.changes.map(shape), [{ revision: 5, op: 'delete', kind: 'file', path: '/mine.txt', newPath: null }])
  t.same(dry.conflicts, ['/shared.txt'])
  t.equal(await c.head(), 4, 'a dry run applies nothing')
  t.same(Object.keys(await c.files()), ['/mine.txt', '/shared.txt'])

  const forced = await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId, force: true })
  t.same(forced.changes.map(shape), dry.changes.map(shape), 'force applies what the dry run showed')
  t.same(forced.conflicts, ['/shared.txt'])
  t.same(await c.files(), { '/shared.txt': { kind: 'file', sha256: sha('v3'), version: 3, metadata: {} } }, 'the other session\'s change is kept')
})

t.test('toRevision undoes every change after it, whoever made it', async t => {
  const c = await setup(t)
  await c.apply(c.mine, { type: 'create', path: '/a.txt', content: 'a' })
  await c.apply(c.other, { type: 'create', path: '/b.txt', content: 'b' })
  await c.apply(c.mine, { type: 'update', path: '/a.txt', content: 'a2' })
  const result = await revert(c.db, c.mine, c.ws, { toRevision: 1 })
  t.same(result.changes.map(shape), [
    { revision: 4, op: 'update', kind: 'file', path: '/a.txt', newPath: null },
    { revision: 5, op: 'delete', kind: 'file', path: '/b.txt', newPath: null }
  ])
  t.same(result.conflicts, [], 'no conflicts by revision')
  t.same(Object.keys(await c.files()), ['/a.txt'])
  t.equal((await c.files())['/a.txt']?.sha256, sha('a'))
})

t.test('nothing to revert, and parameters out of range', async t => {
  const c = await setup(t)
  await c.apply(c.other, { type: 'create', path: '/a.txt', content: 'a' })
  t.same(await revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId }), { revision: 1, changes: [], conflicts: [] }, 'a session with no changes')
  await t.rejects(revert(c.db, c.mine, c.ws, { toRevision: 2 }), { code: 'VALIDATION_FAILED', message: 'toRevision must be between 0 (oldest retained) and 1 (head)' })
  await t.rejects(revert(c.db, c.mine, c.ws, {}), { code: 'VALIDATION_FAILED', message: 'give exactly one of sessionId and toRevision' })
  await t.rejects(revert(c.db, c.mine, c.ws, { sessionId: c.mine.sessionId, toRevision: 0 }), { code: 'VALIDATION_FAILED' })
  await t.rejects(revert(c.db, c.mine, randomUUID(), { toRevision: 0 }), { code: 'WORKSPACE_NOT_FOUND' })
})
