import t, { type Test } from 'tap'
import { isMeta, type BatchResult, type Change, type ErrorReply, type FileBody, type FileMeta, type Operation, type OperationResult, type TreeResult, type WriteResult } from '../helpers/http.js'
import { compareBytes, describeOthers, setup, statusCounts } from '../helpers/files.js'

/** Files API under concurrency and at scale, on a real PostgreSQL database, requests fired in parallel. */

type Tap = Test

/** Asserts the change feed is exactly revisions 1..n, each once, in order. */
function assertGapFree (t: Tap, changes: Change[], n: number, label: string): void {
  const revisions = changes.map(c => c.revision)
  t.equal(revisions.length, n, `${label}: ${n} changes`)
  t.equal(new Set(revisions).size, revisions.length, `${label}: no duplicate revision`)
  let firstGap = -1
  for (let i = 0; i < revisions.length; i++) {
    if (revisions[i] !== i + 1) { firstGap = i; break }
  }
  t.equal(firstGap, -1, `${label}: revisions are 1..${n} in order${firstGap >= 0 ? ` (index ${firstGap} has ${String(revisions[firstGap])})` : ''}`)
}
t.test('two PUTs with the same If-Match: exactly one 200 and one 412', async t => {
  const api = await setup(t)

  const created = await api.put('/race/a.txt', { content: 'v0' })
  t.equal(created.statusCode, 201, created.body)
  let etag = created.json<WriteResult>().file.etag
  const rounds = 10
  for (let round = 1; round <= rounds; round++) {
    const contents = [`round ${round} writer A`, `round ${round} writer B`]
    const replies = await Promise.all(contents.map(c => api.put('/race/a.txt', { content: c }, { 'if-match': `"${etag}"` })))
    const statuses = replies.map(r => r.statusCode).sort()
    t.same(statuses, [200, 412], `round ${round}: one 200 and one 412 (got ${statuses.join(',')}: ${describeOthers(replies, [200, 412])})`)
    const winnerIndex = replies.findIndex(r => r.statusCode === 200)
    const winner = replies[winnerIndex]
    const loser = replies.find(r => r.statusCode === 412)
    if (winner === undefined || loser === undefined) return
    const won = winner.json<WriteResult>()
    const lost = loser.json<ErrorReply>()
    t.equal(lost.code, 'PRECONDITION_FAILED', `round ${round}: loser code`)
    const current = lost.details?.current as Partial<FileMeta> | null | undefined
    t.equal(current?.etag, won.file.etag, `round ${round}: the 412 names the winner's etag as current`)
    t.equal(won.file.version, round + 1, `round ${round}: version counts every write once`)
    t.not(won.file.etag, etag, `round ${round}: etag changed`)
    const read = await api.get('/race/a.txt')
    t.equal(read.statusCode, 200)
    t.equal(read.json<FileBody>().content, contents[winnerIndex], `round ${round}: the stored content is the winner's`)
    etag = won.file.etag
  }
  t.equal(await api.revision(), 1 + rounds, 'one revision per successful write')
  const feed = await api.allChanges()
  assertGapFree(t, feed.changes, 1 + rounds, 'feed')
})

t.test('20 parallel creates of one path: one 200, 19 × 409 FILE_EXISTS', async t => {
  const api = await setup(t)

  const n = 20
  const replies = await Promise.all(Array.from({ length: n }, (_, i) =>
    api.op({ type: 'create', path: '/deep/new/race.txt', content: `writer ${i}` })))
  const counts = statusCounts(replies)
  t.equal(counts[200] ?? 0, 1, `exactly one 200 (statuses ${JSON.stringify(counts)}; ${describeOthers(replies, [200, 409])})`)
  t.equal(counts[409] ?? 0, n - 1, `${n - 1} × 409`)
  const conflicts = replies.filter(r => r.statusCode === 409).map(r => r.json<ErrorReply>().code)
  t.same([...new Set(conflicts)], conflicts.length > 0 ? ['FILE_EXISTS'] : [], 'every 409 is FILE_EXISTS')
  const winnerIndex = replies.findIndex(r => r.statusCode === 200)
  const winner = replies[winnerIndex]
  if (winner === undefined) return
  const won = winner.json<OperationResult>()
  t.equal(won.revision, 1, 'the winner took revision 1')
  const read = await api.get('/deep/new/race.txt')
  t.equal(read.statusCode, 200)
  t.equal(read.json<FileBody>().content, `writer ${winnerIndex}`, 'stored content is the winner\'s')
  t.equal(read.json<FileBody>().version, 1, 'version 1')
  t.equal(await api.revision(), 1, 'losers took no revision')
  const feed = await api.allChanges()
  assertGapFree(t, feed.changes, 1, 'feed')
  t.equal(feed.changes[0]?.path, '/deep/new/race.txt', 'the one change is the create')
})

t.test('20 parallel creates of different files under one missing parent: all succeed', async t => {
  // the implicit parent directories are created by every writer at once
  const api = await setup(t)
  const n = 20
  const replies = await Promise.all(Array.from({ length: n }, (_, i) =>
    api.op({ type: 'create', path: `/shared/parent/f${i}.txt`, content: String(i) })))
  const counts = statusCounts(replies)
  t.equal(counts[200] ?? 0, n, `all ${n} creates succeed (statuses ${JSON.stringify(counts)}; ${describeOthers(replies, [200])})`)
  t.equal(await api.revision(), counts[200] ?? 0, 'revision = successful creates')
  const tree = await api.treeRes({ path: '/', depth: '0', limit: '1000' })
  t.equal(tree.statusCode, 200, tree.body)
  const paths = tree.json<TreeResult>().entries.map(e => e.path)
  const expected = ['/shared', '/shared/parent', ...Array.from({ length: n }, (_, i) => `/shared/parent/f${i}.txt`)].sort(compareBytes)
  t.same(paths, expected, 'one /shared and one /shared/parent, plus the files')
  const feed = await api.allChanges()
  assertGapFree(t, feed.changes, counts[200] ?? 0, 'feed')
})

t.test('50 parallel writers: revision = successful changes, feed 1..N without gap or duplicate', async t => {
  const api = await setup(t)
  const n = 50
  const paths = Array.from({ length: n }, (_, i) => `/writer-${String(i).padStart(2, '0')}.txt`)

  // round 1: each writer its own new file
  const round1 = await Promise.all(paths.map((p, i) => api.put(p, { content: `first ${i}` })))
  const ok1 = round1.filter(r => r.statusCode === 201)
  t.equal(ok1.length, n, `all ${n} creates are 201 (${JSON.stringify(statusCounts(round1))}; ${describeOthers(round1, [201])})`)
  const rev1 = ok1.map(r => r.json<WriteResult>().revision).sort((a, b) => a - b)
  t.same(rev1, Array.from({ length: ok1.length }, (_, i) => i + 1), 'responses carry revisions 1..n, each once')
  t.equal(await api.revision(), ok1.length, 'workspace revision = successful creates')

  // round 2: all 50 update the same file, no precondition: last writer wins, none is lost
  const target = paths[0] ?? '/writer-00.txt'
  const contents = Array.from({ length: n }, (_, i) => `second ${i}`)
  const round2 = await Promise.all(contents.map(c => api.put(target, { content: c })))
  const ok2 = round2.filter(r => r.statusCode === 200)
  t.equal(ok2.length, n, `all ${n} updates are 200 (${JSON.stringify(statusCounts(round2))}; ${describeOthers(round2, [200])})`)
  const results2 = ok2.map(r => r.json<WriteResult>())
  const rev2 = results2.map(r => r.revision).sort((a, b) => a - b)
  t.same(rev2, Array.from({ length: ok2.length }, (_, i) => ok1.length + i + 1), 'round 2 revisions follow round 1 without gap')
  const versions = results2.map(r => r.file.version).sort((a, b) => a - b)
  t.same(versions, Array.from({ length: ok2.length }, (_, i) => i + 2), 'versions 2..n+1, each once (no lost update)')
  t.equal(new Set(results2.map(r => r.file.etag)).size, results2.length, 'every update got its own etag')

  const total = ok1.length + ok2.length
  t.equal(await api.revision(), total, 'workspace revision = successful changes')

  const last = results2.reduce<WriteResult | undefined>((m, r) => (m === undefined || r.revision > m.revision ? r : m), undefined)
  const read = await api.get(target)
  t.equal(read.statusCode, 200)
  const stored = read.json<FileBody>()
  t.equal(stored.etag, last?.file.etag, 'stored etag is that of the highest revision')
  t.equal(stored.version, n + 1, 'stored version counts all writes')
  const lastIndex = results2.findIndex(r => r === last)
  const lastReply = ok2[lastIndex]
  t.equal(stored.content, lastReply === undefined ? undefined : contents[round2.indexOf(lastReply)], 'stored content is that of the highest revision')

  const feed = await api.allChanges(0, 1000)
  t.equal(feed.head, total, 'feed head')
  assertGapFree(t, feed.changes, total, 'feed')
  // each response's revision is the change with that revision
  const byRevision = new Map(feed.changes.map(c => [c.revision, c]))
  let mismatches = 0
  for (const r of [...ok1.map(x => x.json<WriteResult>()), ...results2]) {
    const c = byRevision.get(r.revision)
    if (c === undefined || c.path !== r.file.path || c.etag !== r.file.etag || c.version !== r.file.version) mismatches++
  }
  t.equal(mismatches, 0, 'every response matches the change of its revision (path, etag, version)')
  t.same(new Set(feed.changes.slice(0, n).map(c => c.path)), new Set(paths), 'first n changes are the n files')
  t.ok(feed.changes.slice(n).every(c => c.path === target), 'the rest are the shared file')

  // small pages give the same feed
  const paged = await api.allChanges(0, 7)
  t.same(paged.changes.map(c => c.revision), feed.changes.map(c => c.revision), 'limit=7 pages give the same revisions')
})

t.test('directory move of 1,000 files is one change and one revision', async t => {
  const api = await setup(t)
  const n = 1000
  const name = (i: number): string => `f-${String(i).padStart(4, '0')}.txt`
  const ops: Operation[] = Array.from({ length: n }, (_, i) => ({ type: 'create', path: `/big/${name(i)}`, content: `content ${i}` }))
  const batch = await api.batch(ops)
  t.equal(batch.statusCode, 200, batch.body.slice(0, 500))
  if (batch.statusCode !== 200) return
  const batchBody = batch.json<BatchResult>()
  t.equal(batchBody.results.length, n, 'one result per op')
  t.equal(batchBody.revision, n, 'one revision per create (the implicit /big gets none)')
  t.same(batchBody.results.map(r => r.revision), Array.from({ length: n }, (_, i) => i + 1), 'results carry revisions 1..n in op order')

  const moved = await api.op({ type: 'move', path: '/big', newPath: '/moved' })
  t.equal(moved.statusCode, 200, moved.body.slice(0, 500))
  const movedBody = moved.json<OperationResult>()
  t.equal(movedBody.revision, n + 1, 'the move takes exactly one revision')
  t.ok(isMeta(movedBody.data) && movedBody.data.path === '/moved' && movedBody.data.kind === 'directory', 'data is the directory at /moved')
  t.equal(await api.revision(), n + 1, 'workspace revision after the move')

  const since = await api.allChanges(n)
  t.equal(since.changes.length, 1, 'one change after the batch')
  t.match(since.changes[0], { revision: n + 1, op: 'move', kind: 'directory', path: '/big', newPath: '/moved' }, 'the move change')

  const tree = await api.treeRes({ path: '/moved', depth: '0', limit: '5000' })
  t.equal(tree.statusCode, 200, tree.body.slice(0, 500))
  const entries = tree.json<TreeResult>().entries
  t.equal(entries.length, n, `${n} entries under /moved`)
  t.ok(entries.every(e => e.kind === 'file'), 'all files')
  t.same(entries.map(e => e.path), Array.from({ length: n }, (_, i) => `/moved/${name(i)}`), 'exactly the moved files, sorted')
  t.equal(tree.json<TreeResult>().nextCursor, null, 'one page')

  const one = await api.get(`/moved/${name(737)}`)
  t.equal(one.statusCode, 200)
  t.equal(one.json<FileBody>().content, 'content 737', 'content moved along')
  t.equal(one.json<FileBody>().version, 1, 'move keeps version')

  const gone = await api.get('/big')
  t.equal(gone.statusCode, 404, '/big is gone')
  t.equal(gone.json<ErrorReply>().code, 'FILE_NOT_FOUND')
  const goneChild = await api.get(`/big/${name(1)}`)
  t.equal(goneChild.statusCode, 404, 'a file under /big is gone')
  const root = await api.treeRes({ path: '/', depth: '0', limit: '5000' })
  t.equal(root.statusCode, 200)
  const rootPaths = root.json<TreeResult>().entries.map(e => e.path)
  t.notOk(rootPaths.some(p => p === '/big' || p.startsWith('/big/')), 'nothing under /big in the whole tree')
  t.equal(rootPaths.length, n + 1, '/moved and its files only')
})

t.test('a tree of 5,000 entries pages completely', async t => {
  const api = await setup(t)

  // 50 directories (names chosen so byte order differs from naive and locale orders) × 99 files
  const tricky = ['A', 'a', 'a b', 'a-b', 'a.b', 'a_b', 'Zed', '~t', 'd00-x', 'é']
  const dirs = [...Array.from({ length: 40 }, (_, i) => `d${String(i).padStart(2, '0')}`), ...tricky]
  const ops: Operation[] = []
  for (const d of dirs) {
    ops.push({ type: 'mkdir', path: `/${d}` })
    for (let k = 0; k < 99; k++) {
      const f = k % 10 === 0 ? `F${k}.txt` : k % 10 === 1 ? `_${k}` : `f${String(k).padStart(3, '0')}.txt`
      ops.push({ type: 'create', path: `/${d}/${f}`, content: `${d}/${f}` })
    }
  }
  t.equal(ops.length, 5000)
  const expected = ops.map(o => o.path).sort(compareBytes)
  for (let b = 0; b < 5; b++) {
    const res = await api.batch(ops.slice(b * 1000, (b + 1) * 1000))
    t.equal(res.statusCode, 200, `batch ${b}: ${res.statusCode === 200 ? 'ok' : res.body.slice(0, 500)}`)
    if (res.statusCode !== 200) return
    t.equal(res.json<BatchResult>().revision, (b + 1) * 1000, `batch ${b}: revision`)
  }
  const head = await api.revision()
  t.equal(head, 5000, 'workspace revision after 5,000 changes')

  const pageAll = async (between?: (page: number) => Promise<void>): Promise<{ pages: TreeResult[], paths: string[] }> => {
    const pages: TreeResult[] = []
    let cursor: string | null = null
    for (let i = 0; i < 20; i++) {
      const query: Record<string, string> = { path: '/', depth: '0', limit: '1000' }
      if (cursor !== null) query.cursor = cursor
      const res = await api.treeRes(query)
      if (res.statusCode !== 200) throw new Error(`tree page ${i}: ${res.statusCode} ${res.body.slice(0, 300)}`)
      const page = res.json<TreeResult>()
      pages.push(page)
      cursor = page.nextCursor
      if (cursor === null) break
      if (between !== undefined) await between(i)
    }
    return { pages, paths: pages.flatMap(p => p.entries.map(e => e.path)) }
  }

  const { pages, paths } = await pageAll()
  t.equal(pages[pages.length - 1]?.nextCursor, null, 'nextCursor null at the end')
  t.ok(pages.length === 5 || (pages.length === 6 && pages[5]?.entries.length === 0), `5 pages (or 5 and an empty last): got ${pages.length}`)
  t.ok(pages.slice(0, 5).every(p => p.entries.length === 1000), 'full pages have 1000 entries')
  t.same(pages.map(p => p.revision), pages.map(() => 5000), 'the same revision (5000) on every page')
  t.equal(paths.length, 5000, '5,000 entries')
  t.equal(new Set(paths).size, paths.length, 'no duplicates')
  const unsorted = paths.findIndex((p, i) => i > 0 && compareBytes(paths[i - 1] ?? '', p) >= 0)
  t.equal(unsorted, -1, `sorted by path, byte-wise${unsorted >= 0 ? ` (at ${unsorted}: ${String(paths[unsorted - 1])} then ${String(paths[unsorted])})` : ''}`)
  t.same(paths, expected, 'exactly the created entries: no gaps')
  const kinds = pages.flatMap(p => p.entries).filter(e => e.kind === 'directory').length
  t.equal(kinds, 50, '50 directories')

  // writes between pages: the revision stays the one of the first page, nothing repeats, nothing old is lost
  let writes = 0
  const live = await pageAll(async page => {
    const res = await api.put(`/~t/zz-live-${page}.txt`, { content: 'x' })
    if (res.statusCode === 201) writes++
    const del = await api.op({ type: 'delete', path: `/~t/zz-live-${page}.txt` })
    if (del.statusCode === 200) writes++
  })
  t.ok(writes >= 2, `writes happened between pages (${writes})`)
  t.same(live.pages.map(p => p.revision), live.pages.map(() => 5000), 'revision of the first page carried by the cursor')
  t.equal(new Set(live.paths).size, live.paths.length, 'no duplicates while writes happen')
  const liveSet = new Set(live.paths)
  t.equal(expected.filter(p => !liveSet.has(p)).length, 0, 'no original entry missing while writes happen')
  t.equal(live.pages[live.pages.length - 1]?.nextCursor, null, 'ends with nextCursor null')

  // depth=1 at the root lists the 50 directories only
  const top = await api.treeRes({ path: '/', depth: '1', limit: '1000' })
  t.equal(top.statusCode, 200)
  t.same(top.json<TreeResult>().entries.map(e => e.path), dirs.map(d => `/${d}`).sort(compareBytes), 'depth=1: the 50 directories, sorted')
})
