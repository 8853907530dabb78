import t from 'tap'
import { isMeta, type FileMeta, type OperationResult, type RevertResult, type TreeResult } from '../helpers/http.js'
import { setup } from '../helpers/files.js'

/** The executable flag: set by a write, shown in the meta, kept by update, copy, move and revert. */

t.test('executable: false by default, set by PUT and create, kept by an update without it', async t => {
  const c = await setup(t)
  const plain = await c.write('/a.txt', 'a')
  t.equal(plain.file.executable, false, 'a new file is not executable')
  const exe = await c.write('/bin/run.sh', '#!/bin/sh\n', { executable: true })
  t.equal(exe.file.executable, true, 'PUT sets it')
  const kept = await c.write('/bin/run.sh', '#!/bin/sh\necho\n')
  t.equal(kept.file.executable, true, 'a PUT without it keeps it')
  const cleared = await c.write('/bin/run.sh', '#!/bin/sh\necho\n', { executable: false })
  t.equal(cleared.file.executable, false, 'PUT with false clears it')
  const created = (await c.op({ type: 'create', path: '/x', content: '', executable: true })).json<OperationResult>()
  t.ok(isMeta(created.data) && created.data.executable, 'create sets it')
  const updated = (await c.op({ type: 'update', path: '/x', content: 'y' })).json<OperationResult>()
  t.ok(isMeta(updated.data) && updated.data.executable, 'update keeps it')
  const dir = await c.mkdir('/d')
  t.ok(isMeta(dir.data) && !dir.data.executable, 'a directory is never executable')
  t.equal((await c.read('/x')).executable, true, 'GET shows it')
})

t.test('copy, move and revert keep the flag; history reads show it', async t => {
  const c = await setup(t)
  await c.write('/src/tool', 'x', { executable: true })
  t.equal((await c.op({ type: 'copy', path: '/src', newPath: '/copy' })).statusCode, 200)
  t.equal((await c.op({ type: 'move', path: '/src/tool', newPath: '/moved' })).statusCode, 200)
  const tree = (await c.send('GET', `/v1/workspaces/${c.ws}/tree?depth=0`)).json<TreeResult>()
  const flags = Object.fromEntries(tree.entries.map((e: FileMeta) => [e.path, e.executable]))
  t.same(flags, { '/copy': false, '/copy/tool': true, '/moved': true, '/src': false })
  const rev = await c.revision()
  await c.write('/moved', 'y', { executable: false })
  const back = (await c.send('POST', `/v1/workspaces/${c.ws}/revert`, { toRevision: rev })).json<RevertResult>()
  t.equal(back.changes.length, 1)
  t.equal((await c.read('/moved')).executable, true, 'revert restores the flag')
  const past = (await c.get('/moved', `?revision=${rev + 1}`)).json<FileMeta>()
  t.equal(past.executable, false, 'a read at a revision shows the flag then')
})

t.test('executable is refused where it means nothing', async t => {
  const c = await setup(t)
  await c.write('/a', 'a')
  for (const op of [{ type: 'delete', path: '/a', executable: true }, { type: 'mkdir', path: '/d', executable: true }, { type: 'edit', path: '/a', edits: [{ oldText: 'a', newText: 'b' }], executable: true }]) {
    const res = await c.op(op)
    t.equal(res.statusCode, 400, `${op.type} with executable`)
    t.equal(res.json<{ code: string }>().code, 'VALIDATION_FAILED')
  }
  t.equal((await c.put('/b', { content: 'b', executable: 'yes' })).statusCode, 400, 'not a boolean')
  t.equal(await c.revision(), 1, 'nothing changed')
})
