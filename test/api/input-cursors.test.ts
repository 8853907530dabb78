import t from 'tap'
import { isError, type TreeResult } from '../helpers/http.js'
import { setup } from '../helpers/files.js'

/**
 * A tree cursor is opaque, and one this server could not have made is 400 (docs/api.md, "Tree").
 * Node's base64url decoder skips characters outside its alphabet, so a real cursor with `!`,
 * padding or a standard-base64 tail appended decoded to the same cursor and was served (found by
 * test/contract/ws-fuzz.test.ts). Only the one spelling passes.
 */

t.test('a tree cursor with characters its encoding never writes is 400; the cursor as given still works', async t => {
  const c = await setup(t)
  for (const name of ['a', 'b', 'c']) await c.write(`/${name}.txt`, name)
  const first = (await c.treeRes({ path: '/', limit: 1 })).json<TreeResult>()
  const cursor = first.nextCursor
  if (cursor === null) throw new Error('no cursor')
  for (const spelt of [`${cursor}!`, `${cursor}=`, `${cursor}==`, `${cursor}+/`, ` ${cursor}`, `${cursor.slice(0, 4)}.${cursor.slice(4)}`,
    Buffer.from(cursor, 'base64url').toString('base64')]) {
    if (spelt === cursor) continue
    isError(t, await c.treeRes({ path: '/', limit: 1, cursor: spelt }), 400, 'VALIDATION_FAILED', JSON.stringify(spelt))
  }
  const next = await c.treeRes({ path: '/', limit: 1, cursor })
  t.equal(next.statusCode, 200, next.body)
  t.strictSame(next.json<TreeResult>().entries.map(e => e.path), ['/b.txt'])
})
