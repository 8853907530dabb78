import t, { type Test } from 'tap'
import { isError, type ChangesResult, type DeleteResult, type DirBody, type FileMeta, type OperationResult, type TreeResult } from '../helpers/http.js'
import { Ctx, DIGITS, ISO, setup, sha256 } from '../helpers/files.js'

/** GET /tree and GET /changes: contract "Files and directories" and "Revisions and the change feed". */

const bytewise = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

async function seed (c: Ctx): Promise<void> {
  await c.write('/a.txt', 'a')
  await c.write('/d/b.txt', 'b')
  await c.write('/d/e/c.txt', 'c')
  await c.write('/d/e/f/g.txt', 'g')
  await c.write('/z.md', 'z')
}

t.test('tree: depth=1 vs depth=0', async t => {
  const c = await setup(t)
  await seed(c)
  const rev = await c.revision()

  const one = await c.treeRes({ path: '/', depth: 1 })
  t.equal(one.statusCode, 200, one.body)
  const oneBody = one.json<TreeResult>()
  t.same(Object.keys(oneBody).sort(), ['entries', 'nextCursor', 'revision'])
  t.equal(oneBody.revision, rev, 'revision is the workspace revision')
  t.same(oneBody.entries.map(e => e.path), ['/a.txt', '/d', '/z.md'])
  t.equal(oneBody.nextCursor, null)
  t.match(oneBody.entries[0], { path: '/a.txt', name: 'a.txt', kind: 'file', size: 1, sha256: sha256('a'), etag: DIGITS, version: 1, createdAt: ISO })
  t.match(oneBody.entries[1], { path: '/d', kind: 'directory', size: null, sha256: null, mimeType: null })
  for (const e of oneBody.entries) t.notOk('content' in e, `${e.path}: no content in the tree`)

  const all = await c.tree('/', 0)
  const expected = ['/a.txt', '/d', '/d/b.txt', '/d/e', '/d/e/c.txt', '/d/e/f', '/d/e/f/g.txt', '/z.md']
  t.same(all.entries.map(e => e.path), expected, 'depth=0: everything, sorted by path')

  const defaults = await c.treeRes({})
  t.equal(defaults.statusCode, 200, defaults.body)
  t.same(defaults.json<TreeResult>().entries.map(e => e.path), ['/a.txt', '/d', '/z.md'], 'defaults: path=/ depth=1')

  const sub = await c.tree('/d', 1)
  t.same(sub.entries.map(e => e.path), ['/d/b.txt', '/d/e'], 'strictly below path, path itself excluded')
  const sub0 = await c.tree('/d', 0)
  t.same(sub0.entries.map(e => e.path), ['/d/b.txt', '/d/e', '/d/e/c.txt', '/d/e/f', '/d/e/f/g.txt'])
  const two = await c.treeRes({ path: '/d', depth: 2 })
  t.same(two.json<TreeResult>().entries.map(e => e.path), ['/d/b.txt', '/d/e', '/d/e/c.txt', '/d/e/f'], 'depth=2: two levels')
})

t.test('tree: order is bytewise by path', async t => {
  const c = await setup(t)
  for (const p of ['/b', '/B', '/a-b', '/a/b', '/a.b', '/a_b', '/ä', '/Z']) await c.write(p, 'x')
  const got = (await c.tree('/', 0)).entries.map(e => e.path)
  const want = [...got].sort(bytewise)
  t.same(got, want, 'COLLATE "C" order')
  t.same(got, ['/B', '/Z', '/a', '/a-b', '/a.b', '/a/b', '/a_b', '/b', '/ä'])
})

t.test('tree: limit and cursor pagination', async t => {
  const c = await setup(t)
  for (let i = 0; i < 6; i++) await c.write(`/p/f${i}.txt`, String(i))
  await c.write('/p/sub/x.txt', 'x')
  const rev = await c.revision()
  const all = (await c.tree('/p', 0)).entries.map(e => e.path)
  t.equal(all.length, 8)

  const seen: string[] = []
  const revisions: number[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const query: Record<string, string | number> = { path: '/p', depth: 0, limit: 3 }
    if (cursor !== null) query.cursor = cursor
    const res = await c.treeRes(query)
    t.equal(res.statusCode, 200, res.body)
    const body = res.json<TreeResult>()
    t.ok(body.entries.length <= 3, 'at most limit entries')
    seen.push(...body.entries.map(e => e.path))
    revisions.push(body.revision)
    cursor = body.nextCursor
    if (pages === 0) {
      t.type(cursor, 'string', 'a first page of a longer list has a cursor')
      // the workspace moves on between pages; this entry sorts before the cursor, so it must
      // not appear, and the pages must still report the first page's revision
      await c.write('/p/a-written-between-pages.txt', 'late')
    }
    pages++
  } while (cursor !== null && pages < 10)
  t.equal(pages, 3, '8 entries in pages of 3, 3 and 2')
  t.same(seen, all, 'pages concatenate to the full list, in order, no duplicates or gaps')
  t.same(revisions, [rev, rev, rev], 'every page reports the revision of the first page')
  t.equal(cursor, null, 'nextCursor is null at the end')

  const single = await c.treeRes({ path: '/p', depth: 1, limit: 1000 })
  t.equal(single.json<TreeResult>().nextCursor, null, 'one page → nextCursor null')
  const total = (await c.tree('/p', 0)).entries.length
  const exact = await c.treeRes({ path: '/p', depth: 0, limit: total })
  t.equal(exact.json<TreeResult>().entries.length, total)
  t.equal(exact.json<TreeResult>().nextCursor, null, 'limit = number of entries → nextCursor null (no empty last page)')
})

t.test('tree: errors', async t => {
  const c = await setup(t)
  await seed(c)
  isError(t, await c.treeRes({ path: '/a.txt' }), 409, 'NOT_A_DIRECTORY', 'tree of a file')
  isError(t, await c.treeRes({ path: '/nope' }), 404, 'FILE_NOT_FOUND', 'missing')
  isError(t, await c.treeRes({ path: '/d', cursor: 'not-a-cursor!!' }), 400, 'VALIDATION_FAILED', 'bad cursor')
  isError(t, await c.treeRes({ path: '/d', cursor: Buffer.from('{"p":1}').toString('base64url') }), 400, 'VALIDATION_FAILED', 'forged cursor')
  isError(t, await c.treeRes({ limit: 0 }), 400, 'VALIDATION_FAILED', 'limit 0')
  isError(t, await c.treeRes({ limit: 5001 }), 400, 'VALIDATION_FAILED', 'limit 5001')
  isError(t, await c.treeRes({ depth: -1 }), 400, 'VALIDATION_FAILED', 'depth -1')
  isError(t, await c.treeRes({ path: 'd' }), 400, 'INVALID_PATH', 'relative path')
  const ok = await c.treeRes({ limit: 5000 })
  t.equal(ok.statusCode, 200, 'limit 5000 is allowed')
})

/** Siblings whose names share a prefix with, or would match a LIKE pattern of, the subtree root. */
const SIBLINGS: Record<string, string> = {
  '/src/a.ts': 'src-a',
  '/src/sub/b.ts': 'src-b',
  '/src2/c.ts': 'src2',
  '/src_x/d.ts': 'src_x',
  '/src.x/e.ts': 'src.x',
  '/src-x/f.ts': 'src-x',
  '/s%c/g.ts': 'pct',
  '/sabc/h.ts': 'sabc',
  '/s%cc/i.ts': 'pctc',
  '/s_c/j.ts': 'under',
  '/sXc/k.ts': 'sXc',
  '/srcX/l.ts': 'srcX'
}

async function seedSiblings (c: Ctx): Promise<void> {
  for (const [p, content] of Object.entries(SIBLINGS)) await c.write(p, content)
}

async function checkUntouched (t: Test, c: Ctx, except: (p: string) => boolean): Promise<void> {
  for (const [p, content] of Object.entries(SIBLINGS)) {
    if (except(p)) continue
    const res = await c.get(p)
    t.equal(res.statusCode, 200, `${p} still there`)
    if (res.statusCode === 200) t.equal(res.json<{ content: string }>().content, content, `${p} content unchanged`)
  }
}

t.test('subtree queries do not match siblings', async t => {
  const c = await setup(t)
  await seedSiblings(c)

  await t.test('tree and GET of /src, /s%c, /s_c', async t => {
    t.same((await c.tree('/src', 0)).entries.map(e => e.path), ['/src/a.ts', '/src/sub', '/src/sub/b.ts'])
    t.same((await c.tree('/s%c', 0)).entries.map(e => e.path), ['/s%c/g.ts'])
    t.same((await c.tree('/s_c', 0)).entries.map(e => e.path), ['/s_c/j.ts'])
    t.same((await c.tree('/src_x', 0)).entries.map(e => e.path), ['/src_x/d.ts'])
    t.same((await c.get('/s%c')).json<DirBody>().children.map(ch => ch.path), ['/s%c/g.ts'])
    t.same((await c.get('/s_c')).json<DirBody>().children.map(ch => ch.path), ['/s_c/j.ts'])
  })

  await t.test('delete /src leaves /src2, /src_x … untouched', async t => {
    const res = await c.del('/src')
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json<DeleteResult>().deleted, 4, '/src, /src/a.ts, /src/sub, /src/sub/b.ts')
    await checkUntouched(t, c, p => p.startsWith('/src/'))
    isError(t, await c.get('/src/a.ts'), 404, 'FILE_NOT_FOUND')
  })

  await t.test('delete /s_c (LIKE _) leaves /sXc untouched', async t => {
    const res = await c.del('/s_c')
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json<DeleteResult>().deleted, 2)
    await checkUntouched(t, c, p => p.startsWith('/src/') || p.startsWith('/s_c/'))
  })

  await t.test('move /s%c (LIKE %) leaves /sabc and /s%cc untouched', async t => {
    const res = await c.op({ type: 'move', path: '/s%c', newPath: '/moved%' })
    t.equal(res.statusCode, 200, res.body)
    t.equal((await c.read('/moved%/g.ts')).content, 'pct')
    await checkUntouched(t, c, p => p.startsWith('/src/') || p.startsWith('/s_c/') || p.startsWith('/s%c/'))
    t.same((await c.tree('/moved%', 0)).entries.map(e => e.path), ['/moved%/g.ts'])
  })

  await t.test('move and copy /src_x leave /srcX, /src.x, /src-x untouched', async t => {
    const cp = await c.op({ type: 'copy', path: '/src_x', newPath: '/copy_x' })
    t.equal(cp.statusCode, 200, cp.body)
    t.same((await c.tree('/copy_x', 0)).entries.map(e => e.path), ['/copy_x/d.ts'])
    const mv = await c.op({ type: 'move', path: '/src_x', newPath: '/src' })
    t.equal(mv.statusCode, 200, mv.body)
    await checkUntouched(t, c, p => p.startsWith('/src/') || p.startsWith('/s_c/') || p.startsWith('/s%c/') || p.startsWith('/src_x/'))
    t.same((await c.tree('/src', 0)).entries.map(e => e.path), ['/src/d.ts'])
  })

  await t.test('the whole tree is what it should be', async t => {
    const want = ['/copy_x', '/copy_x/d.ts', '/moved%', '/moved%/g.ts', '/s%cc', '/s%cc/i.ts', '/sXc', '/sXc/k.ts', '/sabc', '/sabc/h.ts',
      '/src', '/src-x', '/src-x/f.ts', '/src.x', '/src.x/e.ts', '/src/d.ts', '/src2', '/src2/c.ts', '/srcX', '/srcX/l.ts'].sort(bytewise)
    t.same(await c.allPaths(), want)
  })
})

t.test('changes: the feed', async t => {
  const c = await setup(t)
  const r1 = (await c.op({ type: 'create', path: '/a.txt', content: 'a' })).json<OperationResult>()
  const r2 = (await c.op({ type: 'update', path: '/a.txt', content: 'ab' })).json<OperationResult>()
  const r3 = (await c.op({ type: 'mkdir', path: '/d' })).json<OperationResult>()
  const r4 = (await c.op({ type: 'move', path: '/a.txt', newPath: '/d/a.txt' })).json<OperationResult>()
  const r5 = (await c.op({ type: 'copy', path: '/d', newPath: '/e' })).json<OperationResult>()
  const r6 = (await c.op({ type: 'delete', path: '/e' })).json<OperationResult>()
  t.same([r1, r2, r3, r4, r5, r6].map(r => r.revision), [1, 2, 3, 4, 5, 6])
  const etag = (r: OperationResult): string | undefined => 'etag' in r.data ? r.data.etag : undefined

  const res = await c.changesRes({ since: 0 })
  t.equal(res.statusCode, 200, res.body)
  const feed = res.json<ChangesResult>()
  t.equal(feed.head, 6)
  t.equal(feed.head, await c.revision(), 'head is the workspace revision')
  t.notOk(feed.reset, 'no reset')
  t.equal(feed.changes.length, 6)
  const common = { userId: c.user.id, sessionId: c.user.sessionId, opId: null, at: ISO }
  t.match(feed.changes, [
    { ...common, revision: 1, op: 'create', kind: 'file', path: '/a.txt', newPath: null, etag: etag(r1), version: 1, sha256: sha256('a'), size: 1 },
    { ...common, revision: 2, op: 'update', kind: 'file', path: '/a.txt', newPath: null, etag: etag(r2), version: 2, sha256: sha256('ab'), size: 2 },
    { ...common, revision: 3, op: 'mkdir', kind: 'directory', path: '/d', newPath: null, etag: etag(r3), sha256: null, size: null },
    { ...common, revision: 4, op: 'move', kind: 'file', path: '/a.txt', newPath: '/d/a.txt', etag: etag(r4), version: 2, sha256: sha256('ab'), size: 2 },
    { ...common, revision: 5, op: 'copy', kind: 'directory', path: '/d', newPath: '/e', etag: etag(r5), sha256: null, size: null },
    { ...common, revision: 6, op: 'delete', kind: 'directory', path: '/e', newPath: null, etag: null }
  ])
  for (const ch of feed.changes) {
    t.same(Object.keys(ch).sort(), ['at', 'etag', 'kind', 'newPath', 'op', 'opId', 'path', 'revision', 'sessionId', 'sha256', 'size', 'userId', 'version'], `change ${ch.revision} has exactly the contract fields`)
  }
  const times = feed.changes.map(ch => Date.parse(ch.at))
  t.same(times, [...times].sort((a, b) => a - b), 'at is non-decreasing')

  await t.test('since=N lists those after N', async t => {
    const after = await c.changes(2)
    t.same(after.changes.map(ch => ch.revision), [3, 4, 5, 6])
    t.equal(after.head, 6)
    const none = await c.changes(6)
    t.same(none.changes, [])
    t.equal(none.head, 6)
    t.notOk(none.reset, 'since = head is not a reset')
  })

  await t.test('limit', async t => {
    const page = await c.changes(0, 2)
    t.same(page.changes.map(ch => ch.revision), [1, 2])
    t.equal(page.head, 6, 'head is the head, not the last returned')
    const next = await c.changes(2, 3)
    t.same(next.changes.map(ch => ch.revision), [3, 4, 5])
    isError(t, await c.changesRes({ since: 0, limit: 0 }), 400, 'VALIDATION_FAILED', 'limit 0')
    isError(t, await c.changesRes({ since: 0, limit: 1001 }), 400, 'VALIDATION_FAILED', 'limit 1001')
    isError(t, await c.changesRes({ since: 'abc' }), 400, 'VALIDATION_FAILED', 'since not a number')
    const max = await c.changesRes({ since: 0, limit: 1000 })
    t.equal(max.statusCode, 200, 'limit 1000 allowed')
  })

  await t.test('since greater than head → reset: true', async t => {
    for (const since of [7, 1000]) {
      const res = await c.changesRes({ since })
      t.equal(res.statusCode, 200, res.body)
      const body = res.json<ChangesResult>()
      t.equal(body.reset, true, `since=${since}`)
      t.same(body.changes, [])
      t.equal(body.head, 6)
    }
  })

  await t.test('an empty workspace: head 0, no changes', async t => {
    const e = await setup(t)
    const body = await e.changes(0)
    t.equal(body.head, 0)
    t.same(body.changes, [])
    t.notOk(body.reset)
  })
})

t.test('changes: a PUT and a DELETE are changes too, and the tree revision matches', async t => {
  const c = await setup(t)
  await c.write('/x/y.txt', 'y')
  await c.del('/x/y.txt')
  const feed = await c.changes(0)
  t.same(feed.changes.map(ch => [ch.revision, ch.path]), [[1, '/x/y.txt'], [2, '/x/y.txt']])
  t.match(feed.changes[1], { op: 'delete', kind: 'file', etag: null })
  t.equal((await c.tree('/', 0)).revision, feed.head)
  t.same((await c.tree('/', 0)).entries.map((e: FileMeta) => e.path), ['/x'], 'the implicit parent stays')
})

t.test('changes: opId is the Idempotency-Key', async t => {
  const c = await setup(t)
  const res = await c.op({ type: 'create', path: '/k.txt', content: 'k' }, { 'idempotency-key': 'key-123' })
  t.equal(res.statusCode, 200, res.body)
  const feed = await c.changes(0)
  t.equal(feed.changes[0]?.opId, 'key-123')
})
