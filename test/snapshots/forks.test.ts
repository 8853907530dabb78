import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser } from '../helpers/app.js'
import { Ctx, sha256 } from '../helpers/files.js'
import { expectStatus, isError, type ChangesResult, type Res, type TreeResult, type Workspace } from '../helpers/http.js'

/** Forks (issue 16): a new workspace with another's tree at a revision, rows copied, never bytes. */

const fork = async (ctx: Ctx, payload: unknown, headers: Record<string, string> = {}): Promise<Res> =>
  await ctx.send('POST', `/v1/workspaces/${ctx.ws}/fork`, payload, headers)

const forked = (res: Res): Workspace => expectStatus<Workspace>(res, 201, 'fork')

/** Every entry's path, kind, sha256, size, mimeType and metadata (what a fork keeps), by path. */
async function shape (ctx: Ctx): Promise<unknown[]> {
  const out: unknown[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor === null ? '' : `&cursor=${cursor}`
    const page = expectStatus<TreeResult>(await ctx.getUrl(`/v1/workspaces/${ctx.ws}/tree?depth=0&limit=5000${q}`), 200, 'tree')
    for (const e of page.entries) out.push({ path: e.path, kind: e.kind, sha256: e.sha256, size: e.size, mimeType: e.mimeType, metadata: e.metadata })
    cursor = page.nextCursor
  } while (cursor !== null)
  return out
}

t.test('forks', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url, MAX_ENTRIES_PER_REQUEST: '10' })
  const pg = await dbClient(t, url)
  const alice = await registerUser(app)
  const src = new Ctx(app, alice, await createWorkspace(app, alice, 'source'))
  await src.write('/src/a.ts', 'export const a = 1\n', { metadata: { owner: 'alice' }, mimeType: 'text/x-custom' }) // 1
  await src.write('/src/b.ts', 'export const b = 2\n') // 2
  await src.mkdir('/empty') // 3
  await src.write('/bin.dat', Buffer.from([0, 1, 2, 255]).toString('base64'), { encoding: 'base64' }) // 4
  const atHead = await shape(src)

  t.test('at the head: 201 a workspace owned by the caller at revision 1, forkedFrom, the same tree', async t => {
    const blobs = Number((await pg.query('SELECT count(*) AS n FROM blobs')).rows[0].n)
    const res = await fork(src, { name: 'my fork' })
    const ws = forked(res)
    t.strictSame(Object.keys(ws).sort(), ['createdAt', 'forkedFrom', 'id', 'name', 'ownerId', 'revision', 'role'])
    t.match(ws, { name: 'my fork', ownerId: alice.id, role: 'owner', revision: 1, forkedFrom: { workspaceId: src.ws, revision: 4 } })
    t.not(ws.id, src.ws)
    t.equal(Number((await pg.query('SELECT count(*) AS n FROM blobs')).rows[0].n), blobs, 'no blob stored')
    const f = new Ctx(app, alice, ws.id)
    t.strictSame(await shape(f), atHead, 'the same entries, contents, mimeTypes and metadata')
    t.equal((await f.read('/src/a.ts')).content, 'export const a = 1\n')
    t.strictSame(await f.bytes('/bin.dat'), Buffer.from([0, 1, 2, 255]))
    const meta = await f.read('/src/a.ts')
    t.match(meta, { version: 1, etag: '1', createdBy: alice.id, updatedBy: alice.id, metadata: { owner: 'alice' }, mimeType: 'text/x-custom', sha256: sha256('export const a = 1\n') })
    // GET /v1/workspaces/{id} and the list show forkedFrom too; a workspace made new has null.
    t.match(expectStatus<Workspace>(await f.getUrl(`/v1/workspaces/${ws.id}`), 200, 'get'), { forkedFrom: { workspaceId: src.ws, revision: 4 }, revision: 1 })
    t.equal(expectStatus<Workspace>(await src.getUrl(`/v1/workspaces/${src.ws}`), 200, 'get').forkedFrom, null)
    const list = expectStatus<{ items: Workspace[] }>(await f.getUrl('/v1/workspaces'), 200, 'list').items
    t.match(list.find(w => w.id === ws.id), { forkedFrom: { workspaceId: src.ws, revision: 4 } })

    // The change feed: one change, revision 1, a copy of / with one history entry per entry placed.
    const feed = expectStatus<ChangesResult>(await f.changesRes({ since: 0 }), 200, 'changes')
    t.equal(feed.head, 1)
    t.equal(feed.changes.length, 1)
    t.match(feed.changes[0], { revision: 1, op: 'copy', kind: 'directory', path: '/', newPath: '/', etag: '1', userId: alice.id, sessionId: alice.sessionId })
    const entries = await pg.query('SELECT seq, path_before, path_after, sha_after, after FROM change_entries WHERE workspace_id = $1 ORDER BY seq', [ws.id])
    t.strictSame(entries.rows.map(r => r.path_after), ['/bin.dat', '/empty', '/src', '/src/a.ts', '/src/b.ts'], 'parents before children')
    t.ok(entries.rows.every(r => r.path_before === null))
    t.match(entries.rows[3].after, { kind: 'file', version: 1, etag: 1, metadata: { owner: 'alice' }, mimeType: 'text/x-custom' })
    // ?revision=1 and history read the fork's revision 1; revision 0 is the empty workspace.
    t.equal(expectStatus<{ content: string }>(await f.get('/src/b.ts', '?revision=1'), 200, 'past read').content, 'export const b = 2\n')
    isError(t, await f.get('/src/b.ts', '?revision=0'), 404, 'FILE_NOT_FOUND')
    const history = expectStatus<{ items: Array<{ revision: number }> }>(await f.getUrl(`/v1/workspaces/${ws.id}/history/src/a.ts`), 200, 'history')
    t.strictSame(history.items.map(i => i.revision), [1])
    // The activity log: a workspace.fork entry of the source, naming the fork.
    const log = await pg.query("SELECT workspace_id, status, revision, details FROM activity WHERE type = 'workspace.fork' AND details->>'forkId' = $1", [ws.id])
    t.match(log.rows, [{ workspace_id: src.ws, status: 201, revision: 4, details: { forkId: ws.id, name: 'my fork', entries: 5 } }])
  })

  t.test('writes to the fork and to the source never affect each other', async t => {
    const f = new Ctx(app, alice, forked(await fork(src, { name: 'independent' })).id)
    await f.write('/src/a.ts', 'fork edit\n')
    await f.write('/fork-only.txt', 'mine')
    expectStatus(await f.del('/src/b.ts'), 200, 'delete in fork')
    await src.write('/src/b.ts', 'source edit\n')
    await src.write('/source-only.txt', 'theirs')
    t.equal((await src.read('/src/a.ts')).content, 'export const a = 1\n', 'source unchanged by the fork\'s write')
    t.equal((await src.read('/src/b.ts')).content, 'source edit\n')
    isError(t, await src.get('/fork-only.txt'), 404, 'FILE_NOT_FOUND')
    t.equal((await f.read('/src/a.ts')).content, 'fork edit\n')
    isError(t, await f.get('/src/b.ts'), 404, 'FILE_NOT_FOUND', 'deleted in the fork only')
    isError(t, await f.get('/source-only.txt'), 404, 'FILE_NOT_FOUND')
    t.equal(await f.revision(), 4)
    // put the source back for the later tests
    await src.write('/src/b.ts', 'export const b = 2\n')
    expectStatus(await src.del('/source-only.txt'), 200, 'clean up')
  })

  t.test('at a past revision: the tree as it was, with later moves, deletes and updates undone', async t => {
    const base = await src.revision()
    const before = await shape(src)
    await src.write('/src/a.ts', 'changed later\n')
    expectStatus(await src.op({ type: 'move', path: '/src', newPath: '/lib' }), 200, 'move')
    expectStatus(await src.del('/empty'), 200, 'delete')
    await src.write('/new.txt', 'new')
    const ws = forked(await fork(src, { name: 'past', revision: base }))
    t.match(ws.forkedFrom, { workspaceId: src.ws, revision: base })
    const f = new Ctx(app, alice, ws.id)
    t.strictSame(await shape(f), before, 'the tree at the revision')
    t.equal((await f.read('/src/a.ts')).content, 'export const a = 1\n')
    // undo for the following tests
    expectStatus(await src.op({ type: 'move', path: '/lib', newPath: '/src' }), 200, 'move back')
    await src.write('/src/a.ts', 'export const a = 1\n', { metadata: { owner: 'alice' }, mimeType: 'text/x-custom' })
    await src.mkdir('/empty')
    expectStatus(await src.del('/new.txt'), 200, 'delete')
    // revision 0: an empty fork at revision 1 (one change, no entries)
    const empty = new Ctx(app, alice, forked(await fork(src, { name: 'empty', revision: 0 })).id)
    t.strictSame(await shape(empty), [])
    t.equal(await empty.revision(), 1)
  })

  t.test('who may: readers fork (and own the fork), others 404; bad bodies 400; nothing created', async t => {
    const bob = await registerUser(app)
    const eve = await registerUser(app)
    expectStatus(await src.send('PUT', `/v1/workspaces/${src.ws}/members`, { email: bob.email, role: 'viewer' }), 200, 'add viewer')
    const asBob = new Ctx(app, bob, src.ws)
    const ws = forked(await fork(asBob, { name: 'bob\'s' }))
    t.equal(ws.ownerId, bob.id)
    t.equal(ws.role, 'owner')
    const asEve = new Ctx(app, eve, src.ws)
    const count = async (): Promise<number> => Number((await pg.query('SELECT count(*) AS n FROM workspaces')).rows[0].n)
    const n = await count()
    isError(t, await fork(asEve, { name: 'x' }), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await fork(src, {}), 400, 'VALIDATION_FAILED', 'no name')
    isError(t, await fork(src, { name: '' }), 400, 'VALIDATION_FAILED', 'empty name')
    isError(t, await fork(src, { name: 'x'.repeat(201) }), 400, 'VALIDATION_FAILED', 'name over 200')
    isError(t, await fork(src, { name: 'x', extra: 1 }), 400, 'VALIDATION_FAILED', 'unknown property')
    isError(t, await fork(src, { name: 'x', revision: -1 }), 400, 'VALIDATION_FAILED', 'negative revision')
    isError(t, await fork(src, { name: 'x', revision: '1' }), 400, 'VALIDATION_FAILED', 'a string revision')
    const head = await src.revision()
    isError(t, await fork(src, { name: 'x', revision: head + 1 }), 400, 'VALIDATION_FAILED', 'past the head')
    t.equal(await count(), n, 'no workspace created')
    forked(await fork(src, { name: 'x'.repeat(200), revision: head }))
  })

  t.test('MAX_ENTRIES_PER_REQUEST: at the bound forks, one past it is 413 and creates nothing', async t => {
    const c = new Ctx(app, alice, await createWorkspace(app, alice, 'bound'))
    // 10 entries: /d and 9 files in it
    expectStatus(await c.batch(Array.from({ length: 9 }, (_, i) => ({ type: 'create', path: `/d/f${i}`, content: String(i) }))), 200, 'batch')
    forked(await fork(c, { name: 'at the bound' }))
    await c.write('/one-more', 'x')
    const n = Number((await pg.query('SELECT count(*) AS n FROM workspaces')).rows[0].n)
    const res = await fork(c, { name: 'past the bound' })
    isError(t, res, 413, 'TOO_MANY_ENTRIES')
    t.match(JSON.parse(res.body), { details: { max: 10 } })
    t.equal(Number((await pg.query('SELECT count(*) AS n FROM workspaces')).rows[0].n), n, 'no workspace created')
    // at a past revision within the bound, it forks
    forked(await fork(c, { name: 'past revision', revision: 9 }))
  })

  t.test('Idempotency-Key: a retry answers the same fork and creates no second', async t => {
    const key = { 'idempotency-key': 'fork-once' }
    const first = forked(await fork(src, { name: 'once' }, key))
    const again = forked(await fork(src, { name: 'once' }, key))
    t.strictSame(again, first)
    t.equal(Number((await pg.query("SELECT count(*) AS n FROM workspaces WHERE name = 'once'")).rows[0].n), 1)
    isError(t, await fork(src, { name: 'twice' }, key), 422, 'IDEMPOTENCY_KEY_REUSED')
  })

  t.test('a fork racing writes to the source holds exactly the tree at its forkedFrom.revision', async t => {
    const c = new Ctx(app, alice, await createWorkspace(app, alice, 'racing'))
    await c.write('/base.txt', 'base')
    // 9 writes: with the base file the source never holds more than MAX_ENTRIES_PER_REQUEST (10) entries, so every fork is in bounds
    const writes = Array.from({ length: 9 }, async (_, i) => await c.write(`/f${i}.txt`, `racing ${i}`))
    const forks = Array.from({ length: 3 }, async (_, i) => forked(await fork(c, { name: `race ${i}` })))
    const [written, made] = await Promise.all([Promise.all(writes), Promise.all(forks)])
    for (const ws of made) {
      const at = ws.forkedFrom?.revision ?? -1
      const expected = ['/base.txt', ...written.filter(w => w.revision <= at).map(w => w.file.path)]
      const f = new Ctx(app, alice, ws.id)
      const files = (await shape(f) as Array<{ path: string, kind: string }>).filter(e => e.kind === 'file').map(e => e.path)
      t.strictSame(files.sort(), expected.sort(), `fork at ${at}: the files written up to it, and none after`)
    }
  })

  t.test('revert toRevision 0 empties the fork; the source keeps its tree', async t => {
    const f = new Ctx(app, alice, forked(await fork(src, { name: 'to revert' })).id)
    const res = await f.send('POST', `/v1/workspaces/${f.ws}/revert`, { toRevision: 0 })
    t.equal(res.statusCode, 200, res.body)
    t.strictSame(await shape(f), [], 'the fork is empty again')
    t.strictSame(await shape(src), atHead, 'the source is untouched')
  })

  t.test('deleting the source leaves the fork whole (its forkedFrom still names it)', async t => {
    const tmp = new Ctx(app, alice, await createWorkspace(app, alice, 'tmp'))
    await tmp.write('/a.txt', 'survives')
    const f = new Ctx(app, alice, forked(await fork(tmp, { name: 'orphan' })).id)
    t.equal((await tmp.send('DELETE', `/v1/workspaces/${tmp.ws}`)).statusCode, 204, 'delete source')
    t.equal((await f.read('/a.txt')).content, 'survives')
    t.match(expectStatus<Workspace>(await f.getUrl(`/v1/workspaces/${f.ws}`), 200, 'get'), { forkedFrom: { workspaceId: tmp.ws, revision: 1 } })
  })
})

t.test('a fork of 10,000 files is fast and stores no blob', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const pg = await dbClient(t, url)
  const alice = await registerUser(app)
  const src = new Ctx(app, alice, await createWorkspace(app, alice, 'big'))
  // 10,000 files (the default MAX_ENTRIES_PER_REQUEST) in the root, each its own content.
  for (let b = 0; b < 10; b++) {
    expectStatus(await src.batch(Array.from({ length: 1000 }, (_, i) => ({ type: 'create', path: `/f${b * 1000 + i}.txt`, content: `file ${b * 1000 + i}\n` }))), 200, `batch ${b}`)
  }
  const blobs = async (): Promise<number> => Number((await pg.query('SELECT count(*) AS n FROM blobs')).rows[0].n)
  const before = await blobs()
  t.ok(before >= 10_000)
  const started = performance.now()
  const ws = forked(await fork(src, { name: 'big fork' }))
  const ms = performance.now() - started
  t.comment(`fork of 10,000 files: ${ms.toFixed(0)} ms`)
  t.ok(ms < 5000, `fast (${ms.toFixed(0)} ms)`)
  t.equal(await blobs(), before, 'no new blob')
  const count = await pg.query('SELECT count(*) AS n, count(DISTINCT blob_sha256) AS shas FROM files WHERE workspace_id = $1', [ws.id])
  t.match(count.rows[0], { n: '10000', shas: '10000' })
  t.equal(Number((await pg.query('SELECT count(*) AS n FROM change_entries WHERE workspace_id = $1', [ws.id])).rows[0].n), 10_000)
  const f = new Ctx(app, alice, ws.id)
  t.equal((await f.read('/f9999.txt')).content, 'file 9999\n')
  // one more entry is past the bound
  await src.write('/one-more.txt', 'x')
  isError(t, await fork(src, { name: 'too big' }), 413, 'TOO_MANY_ENTRIES')
})
