import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser, sleep } from '../helpers/app.js'
import { isError, type DirBody, type FileBody, type HistoryResult } from '../helpers/http.js'
import { Ctx, sha256 } from '../helpers/files.js'
import { allHistory, binary } from '../helpers/history.js'

/**
 * Issue 5, history: "a file updated 5 times, moved, and deleted can be read at each of its
 * revisions; history lists all 7 changes".
 *
 * Decision: "updated 5 times" is five writes that give it content, the first of which creates it
 * (5 versions), so its 7 changes are: create, update ×4, move, delete. Other files are written in
 * between so that the file's revisions are not simply 1..7.
 */

t.test('a file written 5 times, moved and deleted, read at every revision; its history from either path', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))

  const versions = [binary(1), Buffer.from('v2: text\n'), Buffer.from('v3: café\n'), binary(4, 300), Buffer.from('v5: last\n')]
  const content = (b: Buffer): { content: string, encoding: 'base64' } => ({ content: b.toString('base64'), encoding: 'base64' })
  const rev = async (p: Promise<{ statusCode: number, body: string }>): Promise<number> => {
    const r = await p
    if (r.statusCode >= 300) throw new Error(`${r.statusCode} ${r.body}`)
    return (JSON.parse(r.body) as { revision: number }).revision
  }
  // revision → what /d/a.txt and /e/a.txt held right after it (undefined: absent)
  const atOld = new Map<number, Buffer>()
  const atNew = new Map<number, Buffer>()
  const fileRevisions: number[] = []
  const [v1, v2, v3, v4, v5] = versions as [Buffer, Buffer, Buffer, Buffer, Buffer]

  fileRevisions.push(await rev(ctx.put('/d/a.txt', content(v1))))
  await rev(ctx.put('/other.txt', { content: 'o1' }))
  fileRevisions.push(await rev(ctx.put('/d/a.txt', content(v2))))
  const bCreated = await rev(ctx.put('/d/b.txt', { content: 'sibling' }))
  fileRevisions.push(await rev(ctx.put('/d/a.txt', content(v3))))
  fileRevisions.push(await rev(ctx.op({ type: 'update', path: '/d/a.txt', ...content(v4) })))
  const bDeleted = await rev(ctx.del('/d/b.txt'))
  fileRevisions.push(await rev(ctx.put('/d/a.txt', content(v5))))
  const moved = await rev(ctx.op({ type: 'move', path: '/d/a.txt', newPath: '/e/a.txt' }))
  fileRevisions.push(moved)
  await rev(ctx.put('/other.txt', { content: 'o2' }))
  const deleted = await rev(ctx.del('/e/a.txt'))
  fileRevisions.push(deleted)
  const head = await ctx.revision()
  t.equal(head, 11)
  t.same(fileRevisions, [1, 3, 5, 6, 8, 9, 11], 'the file\'s 7 changes, between others')

  let current: Buffer | undefined
  for (let r = 1; r <= head; r++) {
    const i = fileRevisions.indexOf(r)
    if (i >= 0 && i < 5) current = versions[i]
    if (current !== undefined && r < moved) atOld.set(r, current)
    if (r >= moved && r < deleted) atNew.set(r, v5)
  }

  await t.test('read at each revision: the bytes, byte for byte, or 404 where it did not exist', async t => {
    for (let r = 0; r <= head; r++) {
      for (const [path, model] of [['/d/a.txt', atOld], ['/e/a.txt', atNew]] as const) {
        const want = model.get(r)
        const res = await ctx.get(path, `?revision=${r}`)
        const raw = await ctx.get(path, `?revision=${r}&format=raw`)
        if (want === undefined) {
          isError(t, res, 404, 'FILE_NOT_FOUND', `${path} at ${r}: absent`)
          t.equal(raw.statusCode, 404)
          continue
        }
        t.equal(res.statusCode, 200, `${path} at ${r}: ${res.body.slice(0, 100)}`)
        const body = res.json<FileBody>()
        t.ok(Buffer.from(body.content, body.encoding === 'base64' ? 'base64' : 'utf8').equals(want), `${path} at ${r}: content`)
        t.ok(raw.rawPayload.equals(want), `${path} at ${r}: raw bytes`)
        t.equal(body.sha256, sha256(want))
        t.equal(body.size, want.length)
        t.equal(body.version, versions.indexOf(want) + 1, `${path} at ${r}: version of that write (a move keeps it)`)
        t.equal(res.headers['x-revision'], String(r))
      }
    }
    // The versions as JSON: utf8 where the bytes are text, base64 where not.
    t.equal((await ctx.get('/d/a.txt', '?revision=3')).json<FileBody>().content, 'v2: text\n')
    t.equal((await ctx.get('/d/a.txt', '?revision=1')).json<FileBody>().encoding, 'base64')
  })

  await t.test('history lists all 7 changes, newest first, from the old path and from the new one', async t => {
    const feed = (await ctx.changes(0)).changes
    const expected = feed.filter(c => fileRevisions.includes(c.revision)).reverse()
    t.same(expected.map(c => c.op), ['delete', 'move', 'update', 'update', 'update', 'update', 'create'])
    for (const path of ['/d/a.txt', '/e/a.txt']) {
      const { items } = await allHistory(ctx, path)
      t.same(items.map(c => c.revision), [11, 9, 8, 6, 5, 3, 1], `${path}: the 7 revisions, newest first`)
      t.same(items, expected, `${path}: each item is the change from the feed`)
    }
    t.same((await allHistory(ctx, '/d/b.txt')).items.map(c => c.revision), [bDeleted, bCreated], 'a sibling has only its own')
    t.same((await allHistory(ctx, '/other.txt')).items.map(c => c.revision), [10, 2])
    t.same((await allHistory(ctx, '/never.txt')).items, [], 'a path nothing touched: empty')
  })

  await t.test('history is paginated', async t => {
    const whole = (await allHistory(ctx, '/e/a.txt')).items
    const paged = await allHistory(ctx, '/e/a.txt', 3)
    t.equal(paged.pages, 3, 'pages of 3, 3 and 1')
    t.same(paged.items, whole)
    const first = (await ctx.getUrl(`/v1/workspaces/${ctx.ws}/history/e/a.txt?limit=7`)).json<HistoryResult>()
    t.equal(first.nextCursor, null, 'exactly one full page: no next cursor')
    isError(t, await ctx.getUrl(`/v1/workspaces/${ctx.ws}/history/e/a.txt?cursor=x`), 400, 'VALIDATION_FAILED', 'a bad cursor')
  })

  await t.test('directories at a revision list their children as they were', async t => {
    const children = async (path: string, r: number): Promise<string[] | number> => {
      const res = await ctx.get(path, `?revision=${r}`)
      return res.statusCode === 200 ? res.json<DirBody>().children.map(c => c.name) : res.statusCode
    }
    t.same(await children('/d', 1), ['a.txt'])
    t.same(await children('/d', bCreated), ['a.txt', 'b.txt'])
    t.same(await children('/d', bDeleted - 1), ['a.txt', 'b.txt'])
    t.same(await children('/d', bDeleted), ['a.txt'])
    t.same(await children('/d', moved), [], '/d stays, empty, after its file moved out')
    t.same(await children('/e', moved - 1), 404, '/e did not exist before the move')
    t.same(await children('/e', moved), ['a.txt'])
    t.same(await children('/e', deleted), [])
    t.same(await children('/', 1), ['d'])
    t.same(await children('/', 2), ['d', 'other.txt'])
    t.same(await children('/', moved), ['d', 'e', 'other.txt'])
    const d4 = (await ctx.get('/d', `?revision=${bCreated}`)).json<DirBody>().children
    t.match(d4, [{ path: '/d/a.txt', size: v2.length, sha256: sha256(v2), version: 2 }, { path: '/d/b.txt', size: 7, kind: 'file' }], 'children carry their meta as it was')
  })

  await t.test('a revision ahead of the head is 400; not a number is 400', async t => {
    isError(t, await ctx.get('/d/a.txt', `?revision=${head + 1}`), 400, 'VALIDATION_FAILED', 'ahead of head')
    isError(t, await ctx.get('/', `?revision=${head + 1}`), 400, 'VALIDATION_FAILED', 'root ahead of head')
    isError(t, await ctx.get('/d/a.txt', '?revision=-1'), 400, 'VALIDATION_FAILED', 'negative')
    isError(t, await ctx.get('/d/a.txt', '?revision=abc'), 400, 'VALIDATION_FAILED', 'not a number')
  })

  await t.test('a directory move: history and reads follow every file in it', async t => {
    const a = await rev(ctx.put('/m/sub/x.txt', { content: 'x' }))
    const b = await rev(ctx.op({ type: 'move', path: '/m', newPath: '/n' }))
    t.same((await allHistory(ctx, '/n/sub/x.txt')).items.map(c => [c.revision, c.op, c.path, c.newPath]), [[b, 'move', '/m', '/n'], [a, 'create', '/m/sub/x.txt', null]])
    t.same((await allHistory(ctx, '/m/sub/x.txt')).items.map(c => c.revision), [b, a], 'from the old path too')
    t.equal((await ctx.get('/m/sub/x.txt', `?revision=${a}`)).json<FileBody>().content, 'x')
    t.equal((await ctx.get('/m/sub/x.txt', `?revision=${b}`)).statusCode, 404)
    t.equal((await ctx.get('/n/sub/x.txt', `?revision=${b}`)).json<FileBody>().content, 'x')
    t.equal((await ctx.get('/n/sub/x.txt', `?revision=${a}`)).statusCode, 404)
  })

  await t.test('another user cannot read the history', async t => {
    const other = await registerUser(app)
    const them = new Ctx(app, other, ctx.ws)
    isError(t, await them.getUrl(`/v1/workspaces/${ctx.ws}/history/e/a.txt`), 404, 'WORKSPACE_NOT_FOUND', 'history')
    isError(t, await them.get('/d/a.txt', '?revision=1'), 404, 'WORKSPACE_NOT_FOUND', 'a past revision')
  })
})

t.test('retention: pruned revisions are 404, the feed resets, retained revisions still read, unreferenced blobs go', async t => {
  const url = await createTestDatabase(t)
  // 3 s: the retained revisions must stay younger than that through both passes, on a busy machine too.
  const app = await build(t, { DATABASE_URL: url, CHANGE_RETENTION: '3s', RETENTION_INTERVAL_MS: '0' })
  const pg = await dbClient(t, url)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))

  await ctx.write('/keep.txt', 'keep: never touched again') // 1
  await ctx.write('/x.txt', 'x one') // 2
  await ctx.write('/x.txt', 'x two') // 3
  await ctx.write('/gone.txt', 'gone: only in pruned history') // 4
  t.equal((await ctx.del('/gone.txt')).statusCode, 200) // 5
  await sleep(3300)
  await ctx.write('/x.txt', 'x three') // 6
  await ctx.write('/new.txt', 'new') // 7
  // Blobs younger than 10 minutes are kept (they may belong to a write in flight): age them.
  await pg.query("UPDATE blobs SET created_at = now() - interval '1 hour'")
  const pruned = await app.prune()
  t.match(pruned, { changes: 5, blobs: 2 }, 'pruned the 5 old changes and the 2 blobs only they referenced')
  t.match(await app.prune(), { changes: 0, blobs: 0 }, 'a second pass finds nothing more')
  const entries = await pg.query<{ revision: string }>('SELECT revision FROM change_entries WHERE workspace_id = $1 ORDER BY revision', [ctx.ws])
  t.same(entries.rows.map(r => Number(r.revision)), [6, 7], 'the pruned changes\' entries went with them')

  const blobs = async (text: string): Promise<number> => (await pg.query('SELECT 1 FROM blobs WHERE sha256 = $1', [sha256(text)])).rowCount ?? 0
  t.equal(await blobs('x one'), 0, 'x one: only pruned history referenced it → deleted')
  t.equal(await blobs('gone: only in pruned history'), 0, 'a deleted file\'s blob → deleted')
  t.equal(await blobs('x two'), 1, 'x two: still the `before` of retained revision 6 → kept')
  t.equal(await blobs('x three'), 1, 'current content → kept')
  t.equal(await blobs('keep: never touched again'), 1, 'a file untouched since → kept')

  const feed = await ctx.changes(0)
  t.equal(feed.reset, true, '/changes since=0 → reset')
  t.equal(feed.head, 7)
  t.equal((await ctx.changes(4)).reset, true, 'since=4 → reset')
  const retained = await ctx.changes(5)
  t.equal(retained.reset, undefined, 'since=5 (pruned_through) is fine')
  t.same(retained.changes.map(c => c.revision), [6, 7])

  for (const r of [1, 2, 3, 4]) isError(t, await ctx.get('/x.txt', `?revision=${r}`), 404, 'FILE_NOT_FOUND', `/x.txt at pruned revision ${r}`)
  isError(t, await ctx.get('/keep.txt', '?revision=1'), 404, 'FILE_NOT_FOUND', '/keep.txt at pruned revision 1')
  for (const r of [5, 6, 7]) {
    const res = await ctx.get('/keep.txt', `?revision=${r}`)
    t.equal(res.statusCode, 200, `/keep.txt at retained revision ${r}`)
    t.equal(res.json<FileBody>().content, 'keep: never touched again')
  }
  const x5 = await ctx.get('/x.txt', '?revision=5')
  t.equal(x5.statusCode, 200, `/x.txt at 5, the oldest retained revision: ${x5.body.slice(0, 200)}`)
  t.equal(x5.statusCode === 200 ? x5.json<FileBody>().content : null, 'x two', 'as it was before retained revision 6 changed it')
  t.equal((await ctx.get('/x.txt', '?revision=6')).json<FileBody>().content, 'x three')
  isError(t, await ctx.get('/gone.txt', '?revision=5'), 404, 'FILE_NOT_FOUND', 'deleted at 5')
  isError(t, await ctx.get('/new.txt', '?revision=6'), 404, 'FILE_NOT_FOUND', 'created at 7')
  const root5 = await ctx.get('/', '?revision=5')
  t.same(root5.json<DirBody>().children.map(c => [c.path, c.sha256]), [['/keep.txt', sha256('keep: never touched again')], ['/x.txt', sha256('x two')]], 'the root at 5 as it was')
  t.same((await allHistory(ctx, '/x.txt')).items.map(c => c.revision), [6], 'history holds only retained changes')
  isError(t, await app.inject({ method: 'POST', url: `/v1/workspaces/${ctx.ws}/revert`, headers: user.auth, payload: { toRevision: 3 } }), 400, 'VALIDATION_FAILED', 'revert to a pruned revision')
})

t.test('?revision= on a non-ASCII path: 200 with a weak ETag naming the revision, and 304 for it', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  const first = await ctx.write('/日本/ünï.txt', 'one')
  await ctx.write('/日本/ünï.txt', 'two')
  const res = await ctx.get('/日本/ünï.txt', `?revision=${first.revision}`)
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json<{ content: string }>().content, 'one')
  t.equal(res.headers.etag, `W/"${first.revision}"`)
  const again = await ctx.get('/日本/ünï.txt', `?revision=${first.revision}`, { 'if-none-match': String(res.headers.etag) })
  t.equal(again.statusCode, 304)
})
