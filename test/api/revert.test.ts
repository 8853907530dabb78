import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { build, createWorkspace, listen, registerUser, type TestUser } from '../helpers/app.js'
import { isError, type Change, type Res, type RevertResult } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { asReplica, binary, newSession, replicate, snapshot, type ReplicaEntry, type Snapshot } from '../helpers/history.js'
import { connect, isEvent } from '../helpers/ws.js'

/**
 * Issue 5, revert: undoing a session that edited 50 files (with a directory move and a recursive
 * delete) restores every file byte for byte and every path; later edits by another session make
 * it 409 REVERT_CONFLICT unless `force`, which leaves those paths as the other session left them.
 *
 * Decision: "restores every path" is checked on a full snapshot (every entry's path, kind,
 * mimeType, metadata, size, sha256 and bytes); directories the session created and that are empty
 * again after the revert are removed too, so the snapshot after equals the one before exactly.
 */

const b64 = (b: Buffer): { content: string, encoding: 'base64' } => ({ content: b.toString('base64'), encoding: 'base64' })

/** Files of the workspace before the session, written by another session. */
async function base (ctx: Ctx, sid: string): Promise<void> {
  const h = { 'x-session-id': sid }
  const ops: Array<Record<string, unknown>> = []
  for (let i = 1; i <= 20; i++) ops.push({ type: 'create', path: `/src/f${String(i).padStart(2, '0')}.ts`, content: `export const f${i} = ${i}\n`, ...(i % 5 === 0 ? { metadata: { owner: `team-${i}` } } : {}) })
  for (let i = 1; i <= 8; i++) ops.push({ type: 'create', path: `/lib/l${i}.bin`, ...b64(binary(i, 40 + i)), mimeType: 'application/octet-stream' })
  for (let i = 1; i <= 2; i++) ops.push({ type: 'create', path: `/lib/sub/s${i}.bin`, ...b64(binary(100 + i)) })
  for (let i = 1; i <= 6; i++) ops.push({ type: 'create', path: `/docs/d${i}.md`, content: `# doc ${i}\n` })
  ops.push({ type: 'create', path: '/docs/api/index.md', content: '# api\n' })
  for (let i = 1; i <= 4; i++) ops.push({ type: 'create', path: `/keep/k${i}.txt`, content: `keep ${i}` })
  ops.push({ type: 'mkdir', path: '/empty/nested' })
  const res = await ctx.batch(ops, h)
  if (res.statusCode !== 200) throw new Error(`base: ${res.statusCode} ${res.body}`)
}

/** The session's work: 50+ files created, updated, moved, copied and deleted, over every route. */
async function sessionWork (ctx: Ctx, sid: string): Promise<string[]> {
  const h = { 'x-session-id': sid }
  const touched = new Set<string>()
  const ok = async (p: Promise<Res>, ...paths: string[]): Promise<void> => {
    const r = await p
    if (r.statusCode >= 300) throw new Error(`session work: ${r.statusCode} ${r.body}`)
    for (const x of paths) touched.add(x)
  }
  for (let i = 1; i <= 12; i++) {
    const path = `/src/f${String(i).padStart(2, '0')}.ts`
    await ok(ctx.put(path, { content: `// edited ${i}\n`, ...(i === 5 ? { metadata: { owner: 'me' } } : {}) }, h), path)
  }
  await ok(ctx.op({ type: 'update', path: '/src/f13.ts', ...b64(binary(13)), mimeType: 'application/octet-stream' }, h), '/src/f13.ts')
  await ok(ctx.batch([
    { type: 'update', path: '/src/f14.ts', content: 'batch 14' },
    { type: 'update', path: '/src/f15.ts', content: 'batch 15', metadata: {} },
    { type: 'move', path: '/src/f16.ts', newPath: '/src/moved/f16.ts' },
    { type: 'update', path: '/src/moved/f16.ts', content: 'moved and edited' },
    { type: 'copy', path: '/src/f17.ts', newPath: '/copies/f17.ts' },
    { type: 'delete', path: '/src/f18.ts' }
  ], h), '/src/f14.ts', '/src/f15.ts', '/src/f16.ts', '/src/moved/f16.ts', '/copies/f17.ts', '/src/f18.ts')
  for (let i = 1; i <= 12; i++) await ok(ctx.op({ type: 'create', path: `/new/n${i}.txt`, content: `new ${i}` }, h), `/new/n${i}.txt`)
  await ok(ctx.put('/new/deep/a/b/c.txt', { content: 'deep' }, h), '/new/deep/a/b/c.txt')
  await ok(ctx.put('/new/n1.txt', { content: 'new 1, edited' }, h))
  await ok(ctx.del('/new/n2.txt', h))
  // The directory move: /lib (10 files, one subdirectory) to /pkg/lib, then an edit inside it.
  await ok(ctx.op({ type: 'move', path: '/lib', newPath: '/pkg/lib' }, h), ...Array.from({ length: 8 }, (_, i) => `/lib/l${i + 1}.bin`), '/lib/sub/s1.bin', '/lib/sub/s2.bin')
  await ok(ctx.put('/pkg/lib/l1.bin', b64(binary(999)), h))
  await ok(ctx.op({ type: 'move', path: '/pkg/lib/sub/s2.bin', newPath: '/pkg/s2.bin' }, h))
  // The recursive delete: /docs with 7 files, then a file written where one of them was.
  await ok(ctx.del('/docs', h), ...Array.from({ length: 6 }, (_, i) => `/docs/d${i + 1}.md`), '/docs/api/index.md')
  await ok(ctx.put('/docs/d1.md', { content: 'a new d1 in place of the old' }, h))
  await ok(ctx.op({ type: 'mkdir', path: '/made/by/session' }, h))
  await ok(ctx.op({ type: 'delete', path: '/empty' }, h))
  await ok(ctx.op({ type: 'create', path: '/tmp.txt', content: 'transient' }, h))
  await ok(ctx.op({ type: 'delete', path: '/tmp.txt' }, h), '/tmp.txt')
  return [...touched]
}

async function revert (app: FastifyInstance, user: TestUser, ws: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Res> {
  return await app.inject({ method: 'POST', url: `/v1/workspaces/${ws}/revert`, headers: { ...user.auth, ...headers }, payload: body })
}

t.test('reverting a session of 50+ file edits restores the workspace exactly, as new published changes', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  const setupSession = newSession()
  const session = newSession()
  const bystander = newSession()
  const reverter = newSession()
  await base(ctx, setupSession)
  const before = await snapshot(ctx)
  t.equal(Object.values(before).filter(e => e.kind === 'file').length, 41, 'the base: 41 files from another session')

  const touched = await sessionWork(ctx, session)
  t.ok(touched.length >= 50, `the session touched ${touched.length} files (>= 50)`)
  const during = await snapshot(ctx)
  t.not(JSON.stringify(during), JSON.stringify(before), 'the workspace changed')
  // Another session's own file, written after: the revert leaves it alone.
  t.equal((await ctx.put('/bystander.txt', { content: 'not mine' }, { 'x-session-id': bystander })).statusCode, 201)
  const expected: Snapshot = { ...before, '/bystander.txt': (await snapshot(ctx))['/bystander.txt'] as Snapshot[string] }
  const headBefore = await ctx.revision()
  let dryChanges: RevertResult['changes'] = []

  await t.test('dryRun answers the changes and changes nothing', async t => {
    const res = await revert(app, user, ctx.ws, { sessionId: session, dryRun: true }, { 'x-session-id': reverter })
    t.equal(res.statusCode, 200, res.body.slice(0, 300))
    const body = res.json<RevertResult>()
    dryChanges = body.changes
    t.ok(body.changes.length > 0)
    t.equal(body.revision, headBefore + body.changes.length, 'it says which revision it would reach')
    t.equal(await ctx.revision(), headBefore, 'revision unchanged')
    t.equal((await ctx.changes(headBefore)).changes.length, 0, 'no change in the feed')
    t.same(await snapshot(ctx), { ...during, '/bystander.txt': expected['/bystander.txt'] }, 'files unchanged')
  })

  const base_ = await listen(app)
  const client = await connect(t, base_, { token: user.token })
  t.equal(await client.join(ctx.ws), headBefore)

  const res = await revert(app, user, ctx.ws, { sessionId: session }, { 'x-session-id': reverter })
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
  const body = res.json<RevertResult>()
  t.same(body.conflicts, [], 'no conflicts')

  await t.test('every file byte for byte and every path, as before the session', async t => {
    const after = await snapshot(ctx)
    t.same(Object.keys(after).sort(), Object.keys(expected).sort(), 'the same paths')
    t.same(after, expected, 'the same kinds, meta and bytes')
    await converges(t, ctx, 'a session of 50+ edits')
  })

  await t.test('the revert is new changes: revision forward, in the feed, by the reverting session, published', async t => {
    const head = await ctx.revision()
    t.ok(head > headBefore, `revision moved forward ${headBefore} → ${head}`)
    t.equal(body.revision, head)
    const feed = (await ctx.changes(headBefore)).changes
    t.same(feed.map(c => c.revision), Array.from({ length: head - headBefore }, (_, i) => headBefore + 1 + i), 'gap-free new revisions')
    t.same(feed.map(c => c.revision), body.changes.map(c => c.revision), 'the answer lists exactly those changes')
    t.same(feed.map(c => [c.op, c.path, c.newPath]), body.changes.map(c => [c.op, c.path, c.newPath]))
    t.ok(feed.every(c => c.sessionId === reverter && c.userId === user.id), 'made by the reverting session')
    const revs = await client.untilRevision(ctx.ws, head)
    t.same(revs, feed.map(c => c.revision), 'published to subscribers, in order')
    const events = client.messages.filter(isEvent)
    t.same(events.map(e => e.data.op), feed.map(c => c.op), 'each event carries its change')
    // The session's own changes are still there: history is append-only.
    const all = (await ctx.changes(0, 1000)).changes
    t.ok(all.filter(c => c.sessionId === session).length >= 30, 'the reverted changes stay in the feed')
  })

  await t.test('the dry run announced what the revert did', async t => {
    const strip = (c: RevertResult['changes'][number]): unknown[] => [c.revision, c.op, c.kind, c.path, c.newPath, c.version, c.sha256, c.size, c.sessionId]
    t.same(body.changes.map(strip), dryChanges.map(strip), 'the same changes, at the same revisions')
  })

  await t.test('reverting the same session again conflicts with the revert itself', async t => {
    const head = await ctx.revision()
    const again = await revert(app, user, ctx.ws, { sessionId: session, dryRun: true })
    isError(t, again, 409, 'REVERT_CONFLICT', 'the reverting session changed those paths afterwards')
    t.equal(await ctx.revision(), head)
    t.same(await snapshot(ctx), expected, 'nothing changed')
  })
  client.close()
})

t.test('a later edit by another session: 409 REVERT_CONFLICT listing exactly that path; force reverts the rest', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  const session = newSession()
  const other = newSession()
  await base(ctx, newSession())
  const before = await snapshot(ctx)
  await sessionWork(ctx, session)
  // Another session edits one of the files the session edited.
  t.equal((await ctx.put('/src/f03.ts', { content: 'the other session\'s edit' }, { 'x-session-id': other })).statusCode, 200)
  const otherVersion = (await snapshot(ctx))['/src/f03.ts']
  const head = await ctx.revision()
  const during = await snapshot(ctx)

  const conflict = await revert(app, user, ctx.ws, { sessionId: session })
  isError(t, conflict, 409, 'REVERT_CONFLICT', 'revert over a later edit')
  t.same(conflict.json<{ details: { paths: string[] } }>().details.paths, ['/src/f03.ts'], 'details.paths lists exactly that path')
  t.equal(await ctx.revision(), head, 'nothing committed')
  t.same(await snapshot(ctx), during, 'nothing changed')

  const dry = await revert(app, user, ctx.ws, { sessionId: session, dryRun: true })
  isError(t, dry, 409, 'REVERT_CONFLICT', 'a dry run reports the conflict too')

  const forced = await revert(app, user, ctx.ws, { sessionId: session, force: true })
  t.equal(forced.statusCode, 200, forced.body.slice(0, 300))
  t.same(forced.json<RevertResult>().conflicts, ['/src/f03.ts'], 'the path left alone is listed in conflicts')
  const after = await snapshot(ctx)
  t.same(after, { ...before, '/src/f03.ts': otherVersion }, 'everything reverted but that path, which stays as the other session left it')
  await converges(t, ctx, 'force over a session of 50+ edits')
  t.ok(await ctx.revision() > head)
})

t.test('toRevision undoes every change after it, whoever made it', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  await base(ctx, newSession())
  const before = await snapshot(ctx)
  const at = await ctx.revision()
  await sessionWork(ctx, newSession())
  t.equal((await ctx.put('/src/f03.ts', { content: 'someone else' }, { 'x-session-id': newSession() })).statusCode, 200)
  t.equal((await ctx.put('/other.txt', { content: 'someone else' }, { 'x-session-id': newSession() })).statusCode, 201)
  const head = await ctx.revision()
  const res = await revert(app, user, ctx.ws, { toRevision: at })
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
  t.same(await snapshot(ctx), before, 'the workspace as it was at that revision')
  await converges(t, ctx, 'toRevision over a session of 50+ edits')
  t.ok(res.json<RevertResult>().revision > head, 'as new changes')
  t.equal((await ctx.get('/', `?revision=${at}`)).statusCode, 200)
  isError(t, await revert(app, user, ctx.ws, { toRevision: (await ctx.revision()) + 1 }), 400, 'VALIDATION_FAILED', 'toRevision ahead of head')
  isError(t, await revert(app, user, ctx.ws, { toRevision: 1, sessionId: newSession() }), 400, 'VALIDATION_FAILED', 'both sessionId and toRevision')
  isError(t, await revert(app, user, ctx.ws, {}), 400, 'VALIDATION_FAILED', 'neither')
  const nothing = await revert(app, user, ctx.ws, { sessionId: newSession() })
  t.same([nothing.statusCode, nothing.json<RevertResult>().changes], [200, []], 'a session with no changes: nothing to revert')
})

t.test('a viewer cannot revert; a stranger gets 404', async t => {
  const app = await build(t)
  const owner = await registerUser(app)
  const ctx = new Ctx(app, owner, await createWorkspace(app, owner))
  await ctx.write('/a.txt', 'a')
  const viewer = await registerUser(app)
  const m = await app.inject({ method: 'PUT', url: `/v1/workspaces/${ctx.ws}/members`, headers: owner.auth, payload: { email: viewer.email, role: 'viewer' } })
  t.equal(m.statusCode, 200, m.body)
  isError(t, await revert(app, viewer, ctx.ws, { sessionId: owner.sessionId }), 403, 'FORBIDDEN', 'viewer')
  isError(t, await revert(app, viewer, ctx.ws, { toRevision: 0 }), 403, 'FORBIDDEN', 'viewer, toRevision')
  const stranger = await registerUser(app)
  isError(t, await revert(app, stranger, ctx.ws, { toRevision: 0 }), 404, 'WORKSPACE_NOT_FOUND', 'stranger')
  t.equal(await ctx.revision(), 1, 'nothing reverted')
  t.equal((await ctx.read('/a.txt')).content, 'a')
})

/** Every change of the workspace, all pages. */
async function feed (ctx: Ctx): Promise<Change[]> {
  const all: Change[] = []
  for (;;) {
    const page = await ctx.changes(all.at(-1)?.revision ?? 0, 1000)
    if (page.changes.length === 0) return all
    all.push(...page.changes)
  }
}

/** A client that applies the whole change feed ends with exactly the server's tree. */
async function converges (t: Test, ctx: Ctx, what: string): Promise<void> {
  const replica = replicate(await feed(ctx))
  const server = asReplica(await snapshot(ctx))
  const sorted = (m: Map<string, ReplicaEntry>): Array<[string, ReplicaEntry]> => [...m.entries()].sort(([a], [b]) => a < b ? -1 : 1)
  t.same(sorted(replica), sorted(server), `${what}: the change feed, applied by a client, gives the server's tree`)
}

t.test('after any revert, a client that applies the change feed has exactly what the server has', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const fresh = async (): Promise<Ctx> => new Ctx(app, user, await createWorkspace(app, user))
  const ok = async (res: Promise<Res>): Promise<void> => { const r = await res; if (r.statusCode >= 300) throw new Error(`${r.statusCode} ${r.body}`) }
  const s1 = newSession()
  const s2 = newSession()
  const as = (sid: string): Record<string, string> => ({ 'x-session-id': sid })

  await t.test('undoing a recursive delete puts the whole subtree back', async t => {
    const ctx = await fresh()
    await ok(ctx.put('/d/a.ts', { content: 'a' }, as(s2)))
    await ok(ctx.put('/d/e/b.ts', { content: 'b' }, as(s2)))
    await ok(ctx.del('/d', as(s1)))
    await ok(revert(app, user, ctx.ws, { sessionId: s1 }))
    t.same(Object.keys(await snapshot(ctx)).sort(), ['/d', '/d/a.ts', '/d/e', '/d/e/b.ts'])
    await converges(t, ctx, 'recursive delete')
  })

  await t.test('undoing a copy or a move over an existing file puts the file it replaced back', async t => {
    for (const type of ['copy', 'move']) {
      const ctx = await fresh()
      await ok(ctx.put('/a.ts', { content: 'a' }, as(s2)))
      await ok(ctx.put('/b.ts', { content: 'old b' }, as(s2)))
      await ok(ctx.op({ type, path: '/a.ts', newPath: '/b.ts', overwrite: true }, as(s1)))
      await ok(revert(app, user, ctx.ws, { sessionId: s1 }))
      t.equal((await ctx.read('/b.ts')).content, 'old b', `${type}: /b.ts is back`)
      await converges(t, ctx, `${type} with overwrite`)
    }
  })

  await t.test('toRevision over a move, a copy and a delete of a directory', async t => {
    const ctx = await fresh()
    await ok(ctx.put('/a/b.ts', { content: 'b' }))
    await ok(ctx.op({ type: 'move', path: '/a', newPath: '/z' }))
    await ok(ctx.op({ type: 'copy', path: '/z', newPath: '/q' }))
    await ok(ctx.del('/z'))
    await ok(revert(app, user, ctx.ws, { toRevision: 1 }))
    t.same(Object.keys(await snapshot(ctx)).sort(), ['/a', '/a/b.ts'])
    await converges(t, ctx, 'toRevision')
  })

  await t.test('force: a path another session changed stays, and the feed says so', async t => {
    const ctx = await fresh()
    await ok(ctx.put('/src/a.ts', { content: 'mine' }, as(s1)))
    await ok(ctx.op({ type: 'move', path: '/src/a.ts', newPath: '/lib/a.ts' }, as(s1)))
    await ok(ctx.put('/lib/a.ts', { content: 'theirs' }, as(s2)))
    const res = await revert(app, user, ctx.ws, { sessionId: s1, force: true })
    t.same(res.json<RevertResult>().conflicts, ['/lib/a.ts'])
    t.equal((await ctx.read('/lib/a.ts')).content, 'theirs')
    await converges(t, ctx, 'force')
  })

  await t.test('directories created implicitly go, with changes that say so', async t => {
    const ctx = await fresh()
    await ok(ctx.put('/keep.txt', { content: 'k' }, as(s2)))
    await ok(ctx.put('/deep/dir/f.txt', { content: 'f' }, as(s1)))
    await ok(ctx.op({ type: 'move', path: '/deep', newPath: '/x/y/deep' }, as(s1)))
    await ok(revert(app, user, ctx.ws, { sessionId: s1 }))
    t.same(Object.keys(await snapshot(ctx)), ['/keep.txt'])
    await converges(t, ctx, 'implicit parents')
  })

  await t.test('a directory copy is undone with one delete', async t => {
    const ctx = await fresh()
    await ok(ctx.batch(Array.from({ length: 20 }, (_, i) => ({ type: 'create', path: `/lib/sub/f${i}.ts`, content: String(i) })), as(s2)))
    await ok(ctx.op({ type: 'copy', path: '/lib', newPath: '/vendor/lib' }, as(s1)))
    const res = await revert(app, user, ctx.ws, { sessionId: s1 })
    t.same(res.json<RevertResult>().changes.map(c => [c.op, c.kind, c.path]), [['delete', 'directory', '/vendor']], 'with the directory made for it')
    await converges(t, ctx, 'directory copy')
  })

  await t.test('a directory moved and moved back is one move', async t => {
    const ctx = await fresh()
    await ok(ctx.batch(Array.from({ length: 20 }, (_, i) => ({ type: 'create', path: `/lib/f${i}.ts`, content: String(i) })), as(s2)))
    await ok(ctx.op({ type: 'move', path: '/lib', newPath: '/pkg' }, as(s1)))
    const res = await revert(app, user, ctx.ws, { sessionId: s1 })
    t.same(res.json<RevertResult>().changes.map(c => [c.op, c.kind, c.path, c.newPath]), [['move', 'directory', '/pkg', '/lib']])
    await converges(t, ctx, 'directory move')
  })
})
