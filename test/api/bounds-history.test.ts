import t from 'tap'
import { sql } from 'kysely'
import { expectStatus, type HistoryResult } from '../helpers/http.js'
import { setup } from '../helpers/files.js'
import { allHistory } from '../helpers/history.js'
import { childPathsQuery, segmentEntries } from '../../src/files/history.js'

/**
 * Hardening, finding 6: history reads are bounded by the page, not by the history. After 2,000
 * moves back and forth between two paths, `/history/a.txt?limit=1` used to read every entry of
 * both paths once per followed move; now each followed path is read with a LIMIT in SQL, and moves
 * between the same two paths are followed once. The pages must still hold every change, in order.
 */

const MOVES = 2000

/** The rows all scans of change_entries produced in an EXPLAIN ANALYZE plan (over all their loops). */
function totalRead (plan: unknown): number {
  if (typeof plan !== 'object' || plan === null) return 0
  const node = plan as Record<string, unknown>
  const own = node['Relation Name'] === 'change_entries' ? Number(node['Actual Rows']) * Number(node['Actual Loops']) : 0
  const children = Array.isArray(node.Plans) ? node.Plans : []
  return children.reduce<number>((sum, child) => sum + totalRead(child), own)
}

/** The largest number of rows any scan of change_entries produced in an EXPLAIN ANALYZE plan. */
function rowsRead (plan: unknown): number {
  if (typeof plan !== 'object' || plan === null) return 0
  const node = plan as Record<string, unknown>
  const own = node['Relation Name'] === 'change_entries' ? Number(node['Actual Rows']) : 0
  const children = Array.isArray(node.Plans) ? node.Plans : []
  return children.reduce<number>((max, child) => Math.max(max, rowsRead(child)), own)
}

t.test('history after 2,000 back-and-forth moves', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'moving')
  for (let done = 0; done < MOVES; done += 1000) {
    const ops = Array.from({ length: 1000 }, (_, i) => (done + i) % 2 === 0
      ? { type: 'move', path: '/a.txt', newPath: '/b.txt' }
      : { type: 'move', path: '/b.txt', newPath: '/a.txt' })
    expectStatus(await c.batch(ops), 200, 'moves')
  }
  const head = await c.revision()
  t.equal(head, MOVES + 1)
  const url = (path: string, query: string): string => `/v1/workspaces/${c.ws}/history${path}?${query}`

  await t.test('limit=1: the newest change, and a cursor', async t => {
    const page = expectStatus<HistoryResult>(await c.getUrl(url('/a.txt', 'limit=1')), 200, 'history')
    t.same(page.items.map(i => i.revision), [head])
    t.equal(page.nextCursor, String(head))
  })

  await t.test('every page, from either path, holds every change newest first', async t => {
    const all = Array.from({ length: head }, (_, i) => head - i)
    t.same((await allHistory(c, '/a.txt', 1000)).items.map(i => i.revision), all, '/a.txt')
    t.same((await allHistory(c, '/b.txt', 1000)).items.map(i => i.revision), all, '/b.txt')
  })

  await t.test('a page after a cursor follows the moves made after it', async t => {
    // /b.txt had no change before revision 2 (its move in from /a.txt): the page comes from /a.txt.
    const page = expectStatus<HistoryResult>(await c.getUrl(url('/b.txt', 'limit=5&cursor=2')), 200, 'history')
    t.same(page.items.map(i => i.revision), [1])
    t.equal(page.nextCursor, null)
  })

  await t.test('a followed path is read with a LIMIT: the scan stops at the page', async t => {
    const segment = { path: '/a.txt', after: 0, upTo: Number.MAX_SAFE_INTEGER }
    // Statistics as a server that ran a while has them, so the plan does not hang on autovacuum.
    await sql`ANALYZE change_entries`.execute(c.app.db)
    for (const column of ['path_after', 'path_before'] as const) {
      const plan = await segmentEntries(c.app.db, c.ws, segment, column, Number.MAX_SAFE_INTEGER, 3).explain('json', sql`analyze`)
      const root = (plan[0] as { 'QUERY PLAN': Array<{ Plan: unknown }> })['QUERY PLAN'][0]?.Plan
      const read = rowsRead(root)
      t.ok(read > 0 && read <= 3, `${column}: ${read} rows read of the ~${MOVES / 2} entries of /a.txt`)
    }
  })
})

t.test('a directory at a revision lists its children as they were, whatever the history below them', async t => {
  const c = await setup(t)
  // Names that sort between a child and its subtree (`a-b`, `a.c` < `a/`), and LIKE's wildcards.
  const files = ['/d/a/x.txt', '/d/a-b.txt', '/d/a.c/y.txt', '/d/a0.txt', '/d/a_%.txt', '/d/b/deep/z.txt', '/d/c.txt', '/top.txt']
  expectStatus(await c.batch(files.map(path => ({ type: 'create', path, content: path }))), 200, 'files')
  const first = await c.revision()
  // A long history below one child: 1,000 writes of /d/a/x.txt.
  expectStatus(await c.batch(Array.from({ length: 1000 }, (_, i) => ({ type: 'update', path: '/d/a/x.txt', content: `v${i}` }))), 200, 'writes')
  expectStatus(await c.batch([{ type: 'delete', path: '/d/c.txt' }, { type: 'move', path: '/d/a0.txt', newPath: '/d/a1.txt' }]), 200, 'changes')
  const last = await c.revision()
  const names = async (path: string, revision: number): Promise<string[]> =>
    expectStatus<{ children: Array<{ name: string }> }>(await c.get(path, `?revision=${revision}`), 200, `${path} at ${revision}`).children.map(ch => ch.name)

  t.same(await names('/d', first), ['a', 'a-b.txt', 'a.c', 'a0.txt', 'a_%.txt', 'b', 'c.txt'])
  t.same(await names('/d', first + 500), ['a', 'a-b.txt', 'a.c', 'a0.txt', 'a_%.txt', 'b', 'c.txt'])
  t.same(await names('/d', last), ['a', 'a-b.txt', 'a.c', 'a1.txt', 'a_%.txt', 'b'])
  t.same(await names('/', first), ['d', 'top.txt'])
  t.same(await names('/d/a', last), ['x.txt'])
  t.same(await names('/d/b', last), ['deep'])
  const x = expectStatus<{ children: Array<{ name: string, version: number }> }>(await c.get('/d/a', `?revision=${first + 500}`), 200, '/d/a')
  t.match(x.children, [{ name: 'x.txt', version: 501 }], 'each child as it was at that revision')

  // The names are found by skipping over each child's subtree: a few index entries per child,
  // not the 1,000 entries of /d/a/x.txt.
  await sql`ANALYZE change_entries`.execute(c.app.db)
  for (const column of ['path_after', 'path_before'] as const) {
    const plan = await sql<{ 'QUERY PLAN': Array<{ Plan: unknown }> }>`EXPLAIN (ANALYZE, FORMAT JSON) ${childPathsQuery(c.ws, '/d', column, 10_001)}`.execute(c.app.db)
    const read = totalRead(plan.rows[0]?.['QUERY PLAN'][0]?.Plan)
    t.ok(read <= 30, `${column}: ${read} entries read to find the children of /d`)
  }
})
