import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser, sleep } from '../helpers/app.js'
import { Ctx, setup } from '../helpers/files.js'
import { expectStatus, isError, type Entry, type Res } from '../helpers/http.js'

/** Snapshots (issue 16): named revisions, read as ?revision=, kept from retention. */

interface Snap { name: string, revision: number, createdAt: string, createdBy: string | null }

const base = (ctx: Ctx): string => `/v1/workspaces/${ctx.ws}/snapshots`
const create = async (ctx: Ctx, payload: unknown, headers: Record<string, string> = {}): Promise<Res> => await ctx.send('POST', base(ctx), payload, headers)
const created = (res: Res): Snap => expectStatus<Snap>(res, 201, 'create snapshot')

/** The whole tree right after `revision`, read through ?revision= (paths, kinds, contents, metas). */
async function treeAt (ctx: Ctx, revision: number, path = '/'): Promise<unknown[]> {
  const dir = expectStatus<Entry>(await ctx.get(path, `?revision=${revision}`), 200, `read ${path} at ${revision}`)
  const out: unknown[] = []
  for (const c of dir.children ?? []) {
    if (c.kind === 'directory') {
      out.push({ path: c.path, kind: c.kind, etag: c.etag, metadata: c.metadata })
      out.push(...await treeAt(ctx, revision, c.path))
    } else {
      const f = expectStatus<Entry>(await ctx.get(c.path, `?revision=${revision}`), 200, `read ${c.path} at ${revision}`)
      out.push({ path: f.path, kind: f.kind, etag: f.etag, version: f.version, sha256: f.sha256, content: f.content, metadata: f.metadata })
    }
  }
  return out
}

t.test('snapshots', async t => {
  const ctx = await setup(t)
  await ctx.write('/a.txt', 'one') // 1
  await ctx.write('/b.txt', 'two') // 2

  t.test('create: 201 the snapshot, at the head by default or at a revision', async t => {
    const before = Date.now()
    const s = created(await create(ctx, { name: 'v1' }))
    t.strictSame(Object.keys(s).sort(), ['createdAt', 'createdBy', 'name', 'revision'])
    t.match(s, { name: 'v1', revision: 2, createdBy: ctx.user.id })
    t.ok(Math.abs(Date.parse(s.createdAt) - before) < 60_000)
    t.match(created(await create(ctx, { name: 'first', revision: 1 })), { name: 'first', revision: 1 })
    t.match(created(await create(ctx, { name: 'empty', revision: 0 })), { name: 'empty', revision: 0 })
    t.equal(await ctx.revision(), 2, 'a snapshot takes no revision')
  })

  t.test('list (by name), get, reads at the snapshot\'s revision', async t => {
    const list = expectStatus<{ items: Snap[] }>(await ctx.getUrl(base(ctx)), 200, 'list').items
    t.strictSame(list.map(s => [s.name, s.revision]), [['empty', 0], ['first', 1], ['v1', 2]])
    const got = expectStatus<Snap>(await ctx.getUrl(`${base(ctx)}/first`), 200, 'get')
    t.match(got, { name: 'first', revision: 1 })
    t.equal(expectStatus<Entry>(await ctx.get('/a.txt', `?revision=${got.revision}`), 200, 'read').content, 'one')
    isError(t, await ctx.get('/b.txt', `?revision=${got.revision}`), 404, 'FILE_NOT_FOUND', 'not there yet at the snapshot')
    isError(t, await ctx.getUrl(`${base(ctx)}/nope`), 404, 'SNAPSHOT_NOT_FOUND')
  })

  t.test('names: 1-100 of [A-Za-z0-9._-], starting with a letter or digit; unique per workspace', async t => {
    const count = async (): Promise<number> => expectStatus<{ items: Snap[] }>(await ctx.getUrl(base(ctx)), 200, 'list').items.length
    const n = await count()
    created(await create(ctx, { name: 'a'.repeat(100) }))
    created(await create(ctx, { name: 'v1.0_rc-2' }))
    for (const name of ['', 'a'.repeat(101), '-lead', '.hidden', 'has space', 'sla/sh', 'ünï', 'a%2Fb', 'x\u0000']) {
      isError(t, await create(ctx, { name }), 400, 'VALIDATION_FAILED', JSON.stringify(name))
    }
    isError(t, await create(ctx, {}), 400, 'VALIDATION_FAILED', 'no name')
    isError(t, await create(ctx, { name: 'x', extra: true }), 400, 'VALIDATION_FAILED', 'unknown property')
    isError(t, await create(ctx, { name: 'x', revision: -1 }), 400, 'VALIDATION_FAILED', 'negative revision')
    isError(t, await create(ctx, { name: 'x', revision: 1.5 }), 400, 'VALIDATION_FAILED', 'not an integer')
    const dup = await create(ctx, { name: 'v1', revision: 1 })
    isError(t, dup, 409, 'SNAPSHOT_EXISTS')
    t.equal(expectStatus<Snap>(await ctx.getUrl(`${base(ctx)}/v1`), 200, 'get').revision, 2, 'the first one kept')
    isError(t, await create(ctx, { name: 'ahead', revision: 3 }), 400, 'VALIDATION_FAILED', 'past the head')
    isError(t, await ctx.getUrl(`${base(ctx)}/bad%20name`), 400, 'VALIDATION_FAILED', 'a bad name in the URL')
    t.equal(await count(), n + 2, 'only the two good names were created')
    // the same name in another workspace is another snapshot
    const other = new Ctx(ctx.app, ctx.user, await createWorkspace(ctx.app, ctx.user))
    created(await create(other, { name: 'v1' }))
  })

  t.test('delete: 204, then 404; the name can be used again', async t => {
    t.equal((await ctx.send('DELETE', `${base(ctx)}/empty`)).statusCode, 204)
    isError(t, await ctx.send('DELETE', `${base(ctx)}/empty`), 404, 'SNAPSHOT_NOT_FOUND')
    isError(t, await ctx.getUrl(`${base(ctx)}/empty`), 404, 'SNAPSHOT_NOT_FOUND')
    created(await create(ctx, { name: 'empty', revision: 1 }))
  })

  t.test('who may: members read, editors and owners create and delete; others 404', async t => {
    const viewer = await registerUser(ctx.app)
    const editor = await registerUser(ctx.app)
    const stranger = await registerUser(ctx.app)
    expectStatus(await ctx.send('PUT', `/v1/workspaces/${ctx.ws}/members`, { email: viewer.email, role: 'viewer' }), 200, 'viewer')
    expectStatus(await ctx.send('PUT', `/v1/workspaces/${ctx.ws}/members`, { email: editor.email, role: 'editor' }), 200, 'editor')
    const v = new Ctx(ctx.app, viewer, ctx.ws)
    const e = new Ctx(ctx.app, editor, ctx.ws)
    const s = new Ctx(ctx.app, stranger, ctx.ws)
    expectStatus(await v.getUrl(base(v)), 200, 'viewer lists')
    expectStatus(await v.getUrl(`${base(v)}/v1`), 200, 'viewer gets')
    isError(t, await create(v, { name: 'by-viewer' }), 403, 'FORBIDDEN')
    isError(t, await v.send('DELETE', `${base(v)}/v1`), 403, 'FORBIDDEN')
    t.match(created(await create(e, { name: 'by-editor' })), { createdBy: editor.id })
    t.equal((await e.send('DELETE', `${base(e)}/by-editor`)).statusCode, 204)
    isError(t, await s.getUrl(base(s)), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await s.getUrl(`${base(s)}/v1`), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await create(s, { name: 'x' }), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await s.send('DELETE', `${base(s)}/v1`), 404, 'WORKSPACE_NOT_FOUND')
    expectStatus(await ctx.getUrl(`${base(ctx)}/v1`), 200, 'still there')
  })

  t.test('Idempotency-Key: a retry answers the first response; activity records create and delete', async t => {
    const key = { 'idempotency-key': 'snap-once' }
    const first = created(await create(ctx, { name: 'idem' }, key))
    t.strictSame(created(await create(ctx, { name: 'idem' }, key)), first, 'replayed, not 409')
    const delKey = { 'idempotency-key': 'snap-delete-once' }
    t.equal((await ctx.send('DELETE', `${base(ctx)}/idem`, undefined, delKey)).statusCode, 204)
    t.equal((await ctx.send('DELETE', `${base(ctx)}/idem`, undefined, delKey)).statusCode, 204, 'a retried delete replays 204, not 404')
    const log = expectStatus<{ items: Array<{ type: string, status: number, code: string | null, details: unknown }> }>(
      await ctx.getUrl(`/v1/sessions/${ctx.user.sessionId}/activity?limit=1000`), 200, 'activity').items
    const snaps = log.filter(e => e.type.startsWith('snapshot.'))
    t.ok(snaps.some(e => e.type === 'snapshot.create' && e.status === 201 && JSON.stringify(e.details) === '{"name":"idem"}'))
    t.ok(snaps.some(e => e.type === 'snapshot.create' && e.status === 409 && e.code === 'SNAPSHOT_EXISTS'))
    t.ok(snaps.some(e => e.type === 'snapshot.create' && e.status === 400 && e.code === 'VALIDATION_FAILED'), 'refused by the schema: logged too')
    t.ok(snaps.some(e => e.type === 'snapshot.delete' && e.status === 204))
  })
})

t.test('a snapshot\'s reads equal the tree at its revision and survive retention', async t => {
  const url = await createTestDatabase(t)
  // 3 s: the later revisions must stay younger than that through the passes, on a busy machine too.
  const app = await build(t, { DATABASE_URL: url, CHANGE_RETENTION: '3s', RETENTION_INTERVAL_MS: '0' })
  const pg = await dbClient(t, url)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  await ctx.write('/src/a.ts', 'a one', { metadata: { tag: 1 } }) // 1
  await ctx.write('/src/b.ts', 'b one') // 2
  await ctx.write('/keep.txt', 'kept') // 3
  const snap = created(await create(ctx, { name: 'release' }))
  t.equal(snap.revision, 3)
  const expected = await treeAt(ctx, 3)
  t.equal(expected.length, 4)
  // Later changes: update, delete, move, new files.
  await ctx.write('/src/a.ts', 'a two') // 4
  expectStatus(await ctx.del('/src/b.ts'), 200, 'delete') // 5
  expectStatus(await ctx.op({ type: 'move', path: '/src', newPath: '/lib' }), 200, 'move') // 6
  await ctx.write('/x.txt', 'x') // 7
  await sleep(3300)
  await ctx.write('/late.txt', 'late') // 8: younger than the retention
  await pg.query("UPDATE blobs SET created_at = now() - interval '1 hour'")
  const pruned = await app.prune()
  t.match(pruned, { changes: 3 }, 'only the changes up to the snapshot were pruned, not 4-7')
  const ws = await pg.query('SELECT pruned_through FROM workspaces WHERE id = $1', [ctx.ws])
  t.equal(Number(ws.rows[0].pruned_through), 3, 'pruned_through stops at the snapshot')
  t.match(await app.prune(), { changes: 0 }, 'a second pass finds nothing more (and does not loop)')
  t.strictSame(await treeAt(ctx, 3), expected, 'the snapshot reads the same tree, contents included (blobs kept)')
  t.equal(expectStatus<Entry>(await ctx.get('/src/b.ts', '?revision=3'), 200, 'deleted later').content, 'b one')
  // ?revision= below it is pruned; a new snapshot there is REVISION_NOT_RETAINED, and so is a fork
  isError(t, await ctx.get('/src/a.ts', '?revision=2'), 404, 'FILE_NOT_FOUND')
  const gone = await create(ctx, { name: 'too-old', revision: 2 })
  isError(t, gone, 404, 'REVISION_NOT_RETAINED')
  t.match(JSON.parse(gone.body), { details: { prunedThrough: 3 } })
  isError(t, await ctx.send('POST', `/v1/workspaces/${ctx.ws}/fork`, { name: 'f', revision: 2 }), 404, 'REVISION_NOT_RETAINED')
  // a fork at the snapshot is that tree
  const fork = expectStatus<{ id: string }>(await ctx.send('POST', `/v1/workspaces/${ctx.ws}/fork`, { name: 'f', revision: snap.revision }), 201, 'fork')
  const f = new Ctx(app, user, fork.id)
  t.equal((await f.read('/src/b.ts')).content, 'b one')
  t.equal((await f.read('/src/a.ts')).content, 'a one')
  // Deleting the snapshot lets retention go on: everything older than 3 s goes.
  t.equal((await ctx.send('DELETE', `${base(ctx)}/release`)).statusCode, 204)
  t.match(await app.prune(), { changes: 4 }, 'revisions 4-7 pruned now')
  isError(t, await ctx.get('/keep.txt', '?revision=3'), 404, 'FILE_NOT_FOUND', 'no longer retained')
  t.equal((await ctx.read('/late.txt')).content, 'late')
})
