import t, { type Test } from 'tap'
import { isError, type ErrorReply, type Res } from '../helpers/http.js'
import { setup, type Ctx } from '../helpers/files.js'
import { newSession } from '../helpers/history.js'

/**
 * Hardening, finding 9: every path a move or copy places (each descendant's new path) and every
 * path a revert puts back is checked against the path rules (at most 1024 bytes): past them,
 * 400 INVALID_PATH and nothing changes. Before, such a move made paths that GET and DELETE then
 * refused (or, with long incompressible names, a 500 from the index).
 */

/** A path under /s of exactly 1000 bytes: three 255-byte segments and a 229-byte name. */
const DEEP = `/s/${'x'.repeat(255)}/${'y'.repeat(255)}/${'z'.repeat(255)}/${'w'.repeat(229)}`
/** Where /s goes so that DEEP becomes 1024 bytes (the limit), and 1025. */
const AT_LIMIT = '/' + 'T'.repeat(25)
const PAST = '/' + 'U'.repeat(26)

async function state (c: Ctx): Promise<{ paths: string[], head: number, changes: number[] }> {
  const feed = await c.allChanges(0)
  return { paths: await c.allPaths(), head: await c.revision(), changes: feed.changes.map(ch => ch.revision) }
}

async function refused (t: Test, c: Ctx, label: string, send: () => Promise<Res>): Promise<ErrorReply> {
  const before = await state(c)
  const body = isError(t, await send(), 400, 'INVALID_PATH', { label, message: /longer than 1024 bytes/ })
  t.same(await state(c), before, `${label}: tree, head and change feed unchanged`)
  return body
}

t.test('move and copy: a descendant placed at 1024 bytes is fine, at 1025 refused', async t => {
  t.equal(Buffer.byteLength(DEEP), 1000)
  const c = await setup(t)
  await c.write(DEEP, 'deep')
  await c.write('/s/short.txt', 'short')

  await refused(t, c, 'move to 1025', async () => await c.op({ type: 'move', path: '/s', newPath: PAST }))
  await refused(t, c, 'copy to 1025', async () => await c.op({ type: 'copy', path: '/s', newPath: PAST }))
  const inBatch = await refused(t, c, 'copy to 1025 in a batch', async () => await c.batch([
    { type: 'create', path: '/first.txt', content: 'x' },
    { type: 'copy', path: '/s', newPath: PAST }
  ]))
  t.match(inBatch.details, { index: 1, code: 'INVALID_PATH' })

  const copied = await c.op({ type: 'copy', path: '/s', newPath: AT_LIMIT })
  t.equal(copied.statusCode, 200, `copy to 1024 (${copied.body.slice(0, 200)})`)
  const placed = AT_LIMIT + DEEP.slice(2)
  t.equal(Buffer.byteLength(placed), 1024)
  t.equal((await c.read(placed)).content, 'deep', 'the placed path can be read')
  t.equal((await c.del(placed)).statusCode, 200, 'and deleted')
  t.equal((await c.del(AT_LIMIT)).statusCode, 200)
  const moved = await c.op({ type: 'move', path: '/s', newPath: AT_LIMIT })
  t.equal(moved.statusCode, 200, `move to 1024 (${moved.body.slice(0, 200)})`)
  t.equal((await c.read(placed)).content, 'deep')
})

t.test('revert does not put back a path over the limit', async t => {
  const c = await setup(t)
  await c.write('/legacy/f.txt', 'legacy')
  // An over-long path left by a server before this check: made directly in the database, as
  // no request can make one any more.
  const long = `/legacy/${['l', 'm', 'n', 'o', 'p'].map(ch => ch.repeat(250)).join('/')}`
  t.ok(Buffer.byteLength(long) > 1024)
  await c.app.db.updateTable('files').set({ path: long }).where('workspace_id', '=', c.ws).where('path', '=', '/legacy/f.txt').execute()
  await c.app.db.updateTable('change_entries').set({ path_after: long }).where('workspace_id', '=', c.ws).where('path_after', '=', '/legacy/f.txt').execute()
  const session = newSession()
  const del = await c.del('/legacy', { 'x-session-id': session })
  t.equal(del.statusCode, 200, del.body)

  await refused(t, c, 'revert of the delete', async () => await c.send('POST', `/v1/workspaces/${c.ws}/revert`, { sessionId: session }))
})
