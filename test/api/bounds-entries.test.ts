import t, { type Test } from 'tap'
import { isError, type ErrorReply, type RevertResult } from '../helpers/http.js'
import { setup, type Ctx } from '../helpers/files.js'
import { newSession } from '../helpers/history.js'

/**
 * Hardening, finding 1: every request has a bound on the entries it touches
 * (MAX_ENTRIES_PER_REQUEST): a batch by the sum over its operations, a move, copy or delete by
 * the subtree, a revert by the entries of the changes it undoes. Past it: 413 TOO_MANY_ENTRIES
 * with `details.max`, and nothing changes. The bound is 50 here, so each case is small.
 */

const MAX = 50
const env = { MAX_ENTRIES_PER_REQUEST: String(MAX) }

/** What a refused request must leave as it was: every path, the head, and the change feed. */
async function state (c: Ctx): Promise<{ paths: string[], head: number, changes: number[] }> {
  const feed = await c.allChanges(0)
  return { paths: await c.allPaths(), head: await c.revision(), changes: feed.changes.map(ch => ch.revision) }
}

async function refused (t: Test, c: Ctx, label: string, send: () => Promise<import('../helpers/http.js').Res>, details: Record<string, unknown> = {}): Promise<void> {
  const before = await state(c)
  isError(t, await send(), 413, 'TOO_MANY_ENTRIES', { label, details: { max: MAX, ...details } })
  t.same(await state(c), before, `${label}: tree, head and change feed unchanged`)
}

/** `count` files under `dir`, by batches of at most 25 creates (26 entries with the directory). */
async function fill (c: Ctx, dir: string, count: number, from = 0): Promise<void> {
  for (let i = from; i < from + count; i += 25) {
    const ops = []
    for (let j = i; j < Math.min(i + 25, from + count); j++) ops.push({ type: 'create', path: `${dir}/f${j}.txt`, content: `file ${j}` })
    const res = await c.batch(ops)
    if (res.statusCode !== 200) throw new Error(`fill ${dir}: ${res.statusCode} ${res.body}`)
  }
}

t.test('a batch counts the entries of all its operations together', async t => {
  const c = await setup(t, env)
  await fill(c, '/d', 9) // /d and 9 files: 10 entries

  const atLimit = await c.batch([1, 2, 3, 4, 5].map(i => ({ type: 'copy', path: '/d', newPath: `/c${i}` })))
  t.equal(atLimit.statusCode, 200, `5 copies of 10 entries: 50, at the bound (${atLimit.body.slice(0, 200)})`)
  t.equal((await c.allPaths()).length, 60)

  await refused(t, c, '5 copies and one create: 51', async () => await c.batch([
    ...[1, 2, 3, 4, 5].map(i => ({ type: 'copy', path: '/d', newPath: `/e${i}` })),
    { type: 'create', path: '/one-more.txt', content: 'x' }
  ]), { index: 5 })

  // Implicit parents are entries too: 17 creates of /p<i>/q/f.txt are 51 entries.
  await refused(t, c, 'a batch of creates whose parents make it 51', async () => await c.batch(
    Array.from({ length: 17 }, (_, i) => ({ type: 'create', path: `/p${i}/q/f.txt`, content: 'x' }))
  ))
})

t.test('the exponential copy batch of the issue is refused early, and changes nothing', async t => {
  const c = await setup(t, env)
  await c.write('/L0/f.txt', 'x'.repeat(3000))
  const ops = []
  for (let i = 0; i < 28; i++) {
    ops.push({ type: 'copy', path: `/L${i}`, newPath: `/L${i + 1}/a` }, { type: 'copy', path: `/L${i}`, newPath: `/L${i + 1}/b` })
  }
  const before = await state(c)
  const res = await c.batch(ops)
  isError(t, res, 413, 'TOO_MANY_ENTRIES', { details: { max: MAX } })
  t.ok((res.json<ErrorReply>().details?.index as number) < 10, 'at one of the first operations')
  t.same(await state(c), before, 'tree, head and change feed unchanged')
})

t.test('move, copy and delete of a subtree: at the bound, and one past it', async t => {
  const c = await setup(t, env)
  await fill(c, '/ok', 49) // 50 entries
  await fill(c, '/big', 50) // 51 entries

  await refused(t, c, 'move of 51', async () => await c.op({ type: 'move', path: '/big', newPath: '/moved' }))
  await refused(t, c, 'copy of 51', async () => await c.op({ type: 'copy', path: '/big', newPath: '/copied' }))
  await refused(t, c, 'delete op of 51', async () => await c.op({ type: 'delete', path: '/big' }))
  await refused(t, c, 'DELETE of 51', async () => await c.del('/big'))

  const moved = await c.op({ type: 'move', path: '/ok', newPath: '/m' })
  t.equal(moved.statusCode, 200, `move of 50 (${moved.body.slice(0, 200)})`)
  const copied = await c.op({ type: 'copy', path: '/m', newPath: '/c' })
  t.equal(copied.statusCode, 200, `copy of 50 (${copied.body.slice(0, 200)})`)
  const deleted = await c.del('/c')
  t.equal(deleted.statusCode, 200, `delete of 50 (${deleted.body.slice(0, 200)})`)
  t.match(deleted.json(), { deleted: 50 })
  // A move or copy also counts the parents it creates: 50 + /deep = 51.
  await refused(t, c, 'move of 50 that creates a parent', async () => await c.op({ type: 'move', path: '/m', newPath: '/deep/m' }))
})

t.test('revert counts the entries of the changes it undoes', async t => {
  const c = await setup(t, env)
  const big = newSession()
  const h = { 'x-session-id': big }
  await c.write('/keep.txt', 'kept')
  const mark = await c.revision()
  // Two requests of one session: 26 + 25 = 51 entries.
  await c.batch(Array.from({ length: 25 }, (_, i) => ({ type: 'create', path: `/s/a${i}`, content: 'a' })), h)
  const half = await c.revision()
  await c.batch(Array.from({ length: 25 }, (_, i) => ({ type: 'create', path: `/s/b${i}`, content: 'b' })), h)

  const revertUrl = `/v1/workspaces/${c.ws}/revert`
  await refused(t, c, 'revert of a session of 51', async () => await c.send('POST', revertUrl, { sessionId: big }))
  await refused(t, c, 'its dry run', async () => await c.send('POST', revertUrl, { sessionId: big, dryRun: true }))
  await refused(t, c, 'toRevision over 51', async () => await c.send('POST', revertUrl, { toRevision: mark }))

  const partial = await c.send('POST', revertUrl, { toRevision: half })
  t.equal(partial.statusCode, 200, `toRevision over 25 (${partial.body.slice(0, 200)})`)
  t.ok(partial.json<RevertResult>().changes.length > 0)

  // At the bound: a session of exactly 50 entries (49 files and their directory).
  const fifty = newSession()
  await c.batch(Array.from({ length: 49 }, (_, i) => ({ type: 'create', path: `/f/x${i}`, content: 'x' })), { 'x-session-id': fifty })
  const res = await c.send('POST', revertUrl, { sessionId: fifty })
  t.equal(res.statusCode, 200, `revert of a session of 50 (${res.body.slice(0, 200)})`)
  t.notOk((await c.allPaths()).some(p => p.startsWith('/f')), 'undone')
})
