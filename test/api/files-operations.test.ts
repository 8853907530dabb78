import t from 'tap'
import { isError, isMeta, type BatchResult, type ErrorReply, type Operation, type OperationResult } from '../helpers/http.js'
import { DIGITS, dirMeta, ISO, setup, sha256 } from '../helpers/files.js'

/** POST /operations and /operations/batch: contract "Files and directories" (operations) and the decisions. */

t.test('create', async t => {
  const c = await setup(t)
  const res = await c.op({ type: 'create', path: '/src/a.ts', content: 'let a = 1' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<OperationResult>()
  t.match(body, {
    success: true,
    revision: 1,
    timestamp: ISO,
    data: { path: '/src/a.ts', name: 'a.ts', kind: 'file', size: 9, mimeType: 'text/typescript', etag: DIGITS, version: 1, sha256: sha256('let a = 1'), metadata: {}, createdBy: c.user.id }
  })
  t.equal((await c.read('/src/a.ts')).content, 'let a = 1')
  t.match((await c.get('/src')).json(), dirMeta('/src'), 'parent created')
  t.equal(await c.revision(), 1)

  await t.test('content defaults to ""', async t => {
    const res = await c.op({ type: 'create', path: '/empty.txt' })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json<OperationResult>().data, { size: 0, sha256: sha256('') })
  })

  await t.test('base64, mimeType and metadata', async t => {
    const bytes = Buffer.from([0, 1, 2, 250, 251])
    const res = await c.op({ type: 'create', path: '/b.bin', content: bytes.toString('base64'), encoding: 'base64', mimeType: 'application/x-thing', metadata: { k: 'v' } })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json<OperationResult>().data, { size: 5, sha256: sha256(bytes), mimeType: 'application/x-thing', metadata: { k: 'v' } })
    t.same(await c.bytes('/b.bin'), bytes)
  })

  await t.test('existing path → 409 FILE_EXISTS', async t => {
    const before = await c.revision()
    isError(t, await c.op({ type: 'create', path: '/src/a.ts', content: 'other' }), 409, 'FILE_EXISTS', 'a file')
    isError(t, await c.op({ type: 'create', path: '/src', content: 'other' }), 409, 'FILE_EXISTS', 'a directory')
    await c.unchanged(t, before)
    t.equal((await c.read('/src/a.ts')).content, 'let a = 1')
  })

  await t.test('under a file → 409 NOT_A_DIRECTORY', async t => {
    const before = await c.revision()
    isError(t, await c.op({ type: 'create', path: '/src/a.ts/b.ts', content: 'x' }), 409, 'NOT_A_DIRECTORY')
    await c.unchanged(t, before)
  })
})

t.test('update', async t => {
  const c = await setup(t)
  const created = (await c.op({ type: 'create', path: '/a.txt', content: 'one', metadata: { m: 1 } })).json<OperationResult>()

  const res = await c.op({ type: 'update', path: '/a.txt', content: 'two' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<OperationResult>()
  t.equal(body.revision, created.revision + 1)
  t.match(body.data, { path: '/a.txt', version: 2, sha256: sha256('two'), size: 3 })
  t.ok(isMeta(body.data) && isMeta(created.data) && body.data.etag !== created.data.etag, 'new etag')
  t.equal((await c.read('/a.txt')).content, 'two')

  await t.test('metadata alone: content omitted keeps the bytes', async t => {
    const res = await c.op({ type: 'update', path: '/a.txt', metadata: { m: 2 } })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json<OperationResult>().data, { version: 3, sha256: sha256('two'), metadata: { m: 2 } })
    const got = await c.read('/a.txt')
    t.equal(got.content, 'two')
    t.same(got.metadata, { m: 2 })
  })

  await t.test('ifMatch current → 200, stale → 412', async t => {
    const cur = await c.read('/a.txt')
    const ok = await c.op({ type: 'update', path: '/a.txt', content: 'three', ifMatch: cur.etag })
    t.equal(ok.statusCode, 200, ok.body)
    const now = await c.read('/a.txt')
    const before = await c.revision()
    const res = await c.op({ type: 'update', path: '/a.txt', content: 'lost', ifMatch: cur.etag })
    isError(t, res, 412, 'PRECONDITION_FAILED')
    t.match(res.json<ErrorReply>().details, { current: { etag: now.etag, version: now.version } })
    await c.unchanged(t, before)
    t.equal((await c.read('/a.txt')).content, 'three')
  })

  await t.test('missing → 404 FILE_NOT_FOUND', async t => {
    const before = await c.revision()
    isError(t, await c.op({ type: 'update', path: '/missing.txt', content: 'x' }), 404, 'FILE_NOT_FOUND')
    await c.unchanged(t, before)
    isError(t, await c.get('/missing.txt'), 404, 'FILE_NOT_FOUND', 'update does not create')
  })

  await t.test('a directory → 400 IS_A_DIRECTORY', async t => {
    await c.mkdir('/dir')
    const before = await c.revision()
    isError(t, await c.op({ type: 'update', path: '/dir', content: 'x' }), 400, 'IS_A_DIRECTORY')
    await c.unchanged(t, before)
  })
})

t.test('delete', async t => {
  const c = await setup(t)
  await c.op({ type: 'create', path: '/a.txt', content: 'a' })
  await c.op({ type: 'create', path: '/d/x.txt', content: 'x' })
  await c.op({ type: 'create', path: '/d/e/y.txt', content: 'y' })

  const res = await c.op({ type: 'delete', path: '/a.txt' })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json<OperationResult>(), { success: true, data: { deleted: 1 }, revision: 4, timestamp: ISO })
  isError(t, await c.get('/a.txt'), 404, 'FILE_NOT_FOUND')

  const dir = await c.op({ type: 'delete', path: '/d' })
  t.equal(dir.statusCode, 200, dir.body)
  t.same(dir.json<OperationResult>().data, { deleted: 4 }, '/d, /d/x.txt, /d/e, /d/e/y.txt')
  t.same(await c.allPaths(), [])

  const before = await c.revision()
  isError(t, await c.op({ type: 'delete', path: '/a.txt' }), 404, 'FILE_NOT_FOUND', 'missing')
  isError(t, await c.op({ type: 'delete', path: '/' }), 400, 'INVALID_PATH', 'the root')
  await c.unchanged(t, before)

  await t.test('ifMatch stale → 412', async t => {
    const w1 = await c.write('/f.txt', '1')
    await c.write('/f.txt', '2')
    const before = await c.revision()
    isError(t, await c.op({ type: 'delete', path: '/f.txt', ifMatch: w1.file.etag }), 412, 'PRECONDITION_FAILED')
    await c.unchanged(t, before)
    t.equal((await c.read('/f.txt')).content, '2')
  })
})

t.test('move a file', async t => {
  const c = await setup(t)
  const created = await c.write('/a.txt', 'AAA', { metadata: { x: 1 } })
  const res = await c.op({ type: 'move', path: '/a.txt', newPath: '/b/c.txt' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<OperationResult>()
  t.equal(body.revision, created.revision + 1)
  t.match(body.data, { path: '/b/c.txt', name: 'c.txt', kind: 'file', version: 1, sha256: sha256('AAA'), metadata: { x: 1 } })
  t.ok(isMeta(body.data) && body.data.etag !== created.file.etag, 'etag changes when the path does')
  isError(t, await c.get('/a.txt'), 404, 'FILE_NOT_FOUND', 'source gone')
  t.equal((await c.read('/b/c.txt')).content, 'AAA')
  t.match((await c.get('/b')).json(), dirMeta('/b'), 'missing parent of newPath created')

  await t.test('onto an existing file without overwrite → 409 TARGET_EXISTS', async t => {
    await c.write('/src.txt', 'SOURCE')
    await c.write('/dst.txt', 'TARGET')
    const before = await c.revision()
    isError(t, await c.op({ type: 'move', path: '/src.txt', newPath: '/dst.txt' }), 409, 'TARGET_EXISTS')
    isError(t, await c.op({ type: 'move', path: '/src.txt', newPath: '/dst.txt', overwrite: false }), 409, 'TARGET_EXISTS', 'overwrite: false')
    await c.unchanged(t, before)
    t.equal((await c.read('/src.txt')).content, 'SOURCE')
    t.equal((await c.read('/dst.txt')).content, 'TARGET')
  })

  await t.test('with overwrite → 200 and the target has the source\'s content', async t => {
    const before = await c.revision()
    const res = await c.op({ type: 'move', path: '/src.txt', newPath: '/dst.txt', overwrite: true })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json<OperationResult>().revision, before + 1)
    t.equal((await c.read('/dst.txt')).content, 'SOURCE')
    isError(t, await c.get('/src.txt'), 404, 'FILE_NOT_FOUND', 'source gone')
  })

  await t.test('overwrite does not replace a directory', async t => {
    await c.write('/f1.txt', 'f1')
    await c.mkdir('/adir')
    const before = await c.revision()
    isError(t, await c.op({ type: 'move', path: '/f1.txt', newPath: '/adir', overwrite: true }), 409, 'TARGET_EXISTS')
    await c.unchanged(t, before)
  })

  await t.test('missing source → 404 FILE_NOT_FOUND', async t => {
    const before = await c.revision()
    isError(t, await c.op({ type: 'move', path: '/nope.txt', newPath: '/x.txt' }), 404, 'FILE_NOT_FOUND')
    await c.unchanged(t, before)
  })

  await t.test('newPath under a file → 409 NOT_A_DIRECTORY', async t => {
    await c.write('/g.txt', 'g')
    const before = await c.revision()
    isError(t, await c.op({ type: 'move', path: '/g.txt', newPath: '/dst.txt/g.txt' }), 409, 'NOT_A_DIRECTORY')
    await c.unchanged(t, before)
  })

  await t.test('moving the root → 400 INVALID_PATH', async t => {
    const before = await c.revision()
    isError(t, await c.op({ type: 'move', path: '/', newPath: '/x' }), 400, 'INVALID_PATH')
    await c.unchanged(t, before)
  })
})

t.test('copy a file', async t => {
  const c = await setup(t)
  const src = await c.write('/a.txt', 'AAA')
  await c.write('/a.txt', 'AAAA')
  const res = await c.op({ type: 'copy', path: '/a.txt', newPath: '/copies/a.txt' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<OperationResult>()
  t.match(body, { success: true, revision: 3, data: { path: '/copies/a.txt', kind: 'file', version: 1, sha256: sha256('AAAA'), size: 4 } })
  t.equal((await c.read('/a.txt')).content, 'AAAA', 'source kept')
  t.equal((await c.read('/a.txt')).version, 2, 'source version unchanged')
  t.equal((await c.read('/copies/a.txt')).content, 'AAAA')
  t.not((await c.read('/copies/a.txt')).etag, src.file.etag)

  const before = await c.revision()
  isError(t, await c.op({ type: 'copy', path: '/a.txt', newPath: '/copies/a.txt' }), 409, 'TARGET_EXISTS', 'again')
  await c.unchanged(t, before)
  const over = await c.op({ type: 'copy', path: '/a.txt', newPath: '/copies/a.txt', overwrite: true })
  t.equal(over.statusCode, 200, over.body)
})

t.test('mkdir', async t => {
  const c = await setup(t)
  const res = await c.op({ type: 'mkdir', path: '/m/n/o' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<OperationResult>()
  t.match(body, { success: true, revision: 1, timestamp: ISO, data: dirMeta('/m/n/o') })
  for (const p of ['/m', '/m/n', '/m/n/o']) t.match((await c.get(p)).json(), dirMeta(p), `${p} exists`)
  t.same(await c.allPaths(), ['/m', '/m/n', '/m/n/o'])

  await t.test('an existing directory → 200, no new revision', async t => {
    const before = await c.revision()
    const again = await c.op({ type: 'mkdir', path: '/m/n' })
    t.equal(again.statusCode, 200, again.body)
    t.match(again.json<OperationResult>(), { success: true, revision: before, data: dirMeta('/m/n') })
    await c.unchanged(t, before)
    t.equal((await c.changes(0)).changes.length, before, 'no change recorded')
  })

  await t.test('where a file is → 409 FILE_EXISTS', async t => {
    await c.write('/m/f.txt', 'f')
    const before = await c.revision()
    isError(t, await c.op({ type: 'mkdir', path: '/m/f.txt' }), 409, 'FILE_EXISTS')
    isError(t, await c.op({ type: 'mkdir', path: '/m/f.txt/sub' }), 409, 'NOT_A_DIRECTORY', 'below a file')
    await c.unchanged(t, before)
    t.equal((await c.read('/m/f.txt')).kind, 'file')
  })
})

async function seedTree (c: Awaited<ReturnType<typeof setup>>): Promise<void> {
  await c.write('/src/a.ts', 'a')
  await c.write('/src/lib/b.ts', 'b')
  await c.write('/src/lib/deep/c.ts', 'c')
  await c.mkdir('/src/empty')
  await c.write('/src2/keep.ts', 'keep')
}

t.test('move a directory: every descendant, one change', async t => {
  const c = await setup(t)
  await seedTree(c)
  const before = await c.revision()
  const res = await c.op({ type: 'move', path: '/src', newPath: '/dst/moved' })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json<OperationResult>(), { revision: before + 1, data: dirMeta('/dst/moved') })
  t.same(await c.allPaths(), [
    '/dst', '/dst/moved', '/dst/moved/a.ts', '/dst/moved/empty', '/dst/moved/lib', '/dst/moved/lib/b.ts',
    '/dst/moved/lib/deep', '/dst/moved/lib/deep/c.ts', '/src2', '/src2/keep.ts'
  ])
  t.equal((await c.read('/dst/moved/lib/deep/c.ts')).content, 'c')
  t.equal((await c.read('/dst/moved/lib/deep/c.ts')).version, 1, 'move keeps version')
  const feed = await c.changes(before)
  t.equal(feed.head, before + 1)
  t.equal(feed.changes.length, 1, 'ONE change')
  t.match(feed.changes[0], { revision: before + 1, op: 'move', kind: 'directory', path: '/src', newPath: '/dst/moved' })
  t.equal(await c.revision(), before + 1)
})

t.test('copy a directory: every descendant, one change', async t => {
  const c = await setup(t)
  await seedTree(c)
  const before = await c.revision()
  const res = await c.op({ type: 'copy', path: '/src', newPath: '/copy' })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json<OperationResult>(), { revision: before + 1, data: dirMeta('/copy') })
  const paths = await c.allPaths()
  for (const rel of ['', '/a.ts', '/empty', '/lib', '/lib/b.ts', '/lib/deep', '/lib/deep/c.ts']) {
    t.ok(paths.includes('/src' + rel), `/src${rel} kept`)
    t.ok(paths.includes('/copy' + rel), `/copy${rel} copied`)
  }
  t.equal(paths.length, 16, '7 + 7 + /src2 and /src2/keep.ts')
  t.equal((await c.read('/copy/lib/deep/c.ts')).content, 'c')
  const feed = await c.changes(before)
  t.equal(feed.changes.length, 1, 'ONE change')
  t.match(feed.changes[0], { revision: before + 1, op: 'copy', kind: 'directory', path: '/src', newPath: '/copy' })

  await t.test('onto an existing directory → 409 TARGET_EXISTS, even with overwrite', async t => {
    const before = await c.revision()
    isError(t, await c.op({ type: 'copy', path: '/src', newPath: '/src2' }), 409, 'TARGET_EXISTS')
    isError(t, await c.op({ type: 'copy', path: '/src', newPath: '/src2', overwrite: true }), 409, 'TARGET_EXISTS', 'overwrite is for files only')
    isError(t, await c.op({ type: 'move', path: '/src', newPath: '/src2', overwrite: true }), 409, 'TARGET_EXISTS', 'move too')
    await c.unchanged(t, before)
  })
})

t.test('a directory into its own subtree → 400 INVALID_MOVE', async t => {
  const c = await setup(t)
  await seedTree(c)
  const before = await c.revision()
  isError(t, await c.op({ type: 'move', path: '/src', newPath: '/src/lib/src' }), 400, 'INVALID_MOVE', 'move into a descendant')
  isError(t, await c.op({ type: 'move', path: '/src', newPath: '/src/x' }), 400, 'INVALID_MOVE', 'move into itself')
  isError(t, await c.op({ type: 'copy', path: '/src', newPath: '/src/lib/copy' }), 400, 'INVALID_MOVE', 'copy into a descendant')
  isError(t, await c.op({ type: 'move', path: '/src', newPath: '/src' }), 400, 'INVALID_MOVE', 'onto itself')
  await c.unchanged(t, before)
  t.equal((await c.allPaths('/src')).length, 6, 'the subtree is untouched')

  const sibling = await c.op({ type: 'move', path: '/src', newPath: '/src-moved' })
  t.equal(sibling.statusCode, 200, `a sibling whose name starts with the source's is not its subtree: ${sibling.body}`)
})

t.test('missing required fields and unknown types → 400 VALIDATION_FAILED', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const before = await c.revision()
  isError(t, await c.op({ type: 'move', path: '/a.txt' }), 400, 'VALIDATION_FAILED', 'move without newPath')
  isError(t, await c.op({ type: 'copy', path: '/a.txt' }), 400, 'VALIDATION_FAILED', 'copy without newPath')
  isError(t, await c.op({ type: 'rename', path: '/a.txt', newPath: '/b.txt' }), 400, 'VALIDATION_FAILED', 'unknown type')
  isError(t, await c.op({ path: '/a.txt' }), 400, 'VALIDATION_FAILED', 'no type')
  await c.unchanged(t, before)
})

t.test('batch of 3: consecutive revisions', async t => {
  const c = await setup(t)
  await c.write('/pre.txt', 'pre')
  const before = await c.revision()
  const res = await c.batch([
    { type: 'create', path: '/b/1.txt', content: 'one' },
    { type: 'update', path: '/pre.txt', content: 'PRE' },
    { type: 'move', path: '/b/1.txt', newPath: '/b/2.txt' }
  ])
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<BatchResult>()
  t.equal(body.results.length, 3)
  t.same(body.results.map(r => r.revision), [before + 1, before + 2, before + 3])
  t.equal(body.revision, before + 3)
  t.match(body.results[0]?.data, { path: '/b/1.txt', version: 1 })
  t.match(body.results[1]?.data, { path: '/pre.txt', version: 2 })
  t.match(body.results[2]?.data, { path: '/b/2.txt' })
  t.equal(await c.revision(), before + 3)
  t.equal((await c.read('/b/2.txt')).content, 'one', 'later ops see earlier ops')
  const feed = await c.changes(before)
  t.same(feed.changes.map(ch => ch.revision), [before + 1, before + 2, before + 3], 'one change per op')
})

t.test('a batch whose 500th op fails applies nothing', async t => {
  const c = await setup(t)
  await c.write('/existing.txt', 'e')
  const before = await c.revision()
  const ops: Operation[] = []
  for (let i = 0; i < 499; i++) ops.push({ type: 'create', path: `/batch/f${i}.txt`, content: `file ${i}` })
  ops.push({ type: 'update', path: '/missing.txt', content: 'x' })
  ops.push({ type: 'create', path: '/after.txt', content: 'after' })
  const res = await c.batch(ops)
  isError(t, res, 404, 'FILE_NOT_FOUND')
  const err = res.json<ErrorReply>()
  t.match(err.details, { index: 499, code: 'FILE_NOT_FOUND' })
  t.match(err.message, /^operation 499: /)
  t.same(await c.allPaths(), ['/existing.txt'], 'none of the first 499 files (nor /batch) exists')
  t.equal(await c.revision(), before, 'workspace revision unchanged')
  t.equal((await c.changes(0)).head, before, 'change feed head unchanged')

  await t.test('an op its schema refuses is named by index too', async t => {
    for (const bad of [{ type: 'create', path: '/b', metadata: [] }, { type: 'bogus', path: '/b' }, { type: 'create', path: '/b', content: 5 }]) {
      const res = await c.batch([{ type: 'mkdir', path: '/a' }, { type: 'mkdir', path: '/a2' }, bad])
      isError(t, res, 400, 'VALIDATION_FAILED', JSON.stringify(bad))
      t.match(res.json<ErrorReply>().details, { index: 2, code: 'VALIDATION_FAILED', errors: [{ path: /^\/operations\/2/ }] })
    }
    await c.unchanged(t, before)
  })

  await t.test('the failing op\'s status: a conflict in the middle', async t => {
    const res = await c.batch([
      { type: 'create', path: '/x1.txt', content: '1' },
      { type: 'create', path: '/existing.txt', content: 'dup' },
      { type: 'create', path: '/x2.txt', content: '2' }
    ])
    isError(t, res, 409, 'FILE_EXISTS')
    t.match(res.json<ErrorReply>().details, { index: 1, code: 'FILE_EXISTS' })
    await c.unchanged(t, before)
    isError(t, await c.get('/x1.txt'), 404, 'FILE_NOT_FOUND', 'op 0 rolled back')
  })

  await t.test('a precondition failure reports index and current', async t => {
    const res = await c.batch([
      { type: 'create', path: '/y.txt', content: 'y' },
      { type: 'update', path: '/existing.txt', content: 'E', ifMatch: '999999' }
    ])
    isError(t, res, 412, 'PRECONDITION_FAILED')
    t.match(res.json<ErrorReply>().details, { index: 1, code: 'PRECONDITION_FAILED', current: { path: '/existing.txt' } })
    await c.unchanged(t, before)
  })
})

t.test('batch size: 0 → 400, 1001 → 400, 1000 → 200', async t => {
  const c = await setup(t)
  const mk = (n: number): Operation[] => Array.from({ length: n }, (_, i) => ({ type: 'create', path: `/n/f${i}`, content: '' }))
  isError(t, await c.batch([]), 400, 'VALIDATION_FAILED', '0 ops')
  isError(t, await c.batch(mk(1001)), 400, 'VALIDATION_FAILED', '1001 ops')
  isError(t, await c.app.inject({ method: 'POST', url: `/v1/workspaces/${c.ws}/operations/batch`, payload: {}, headers: c.user.auth }), 400, 'VALIDATION_FAILED', 'no operations')
  await c.unchanged(t, 0)
  const res = await c.batch(mk(1000))
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
  const body = res.json<BatchResult>()
  t.equal(body.results.length, 1000)
  t.equal(body.revision, 1000)
  t.equal(body.results[999]?.revision, 1000)
  t.equal(await c.revision(), 1000)
  t.equal((await c.allPaths('/n')).length, 1000)
})

t.test('X-Session-Id and op sessionId are recorded on the change', async t => {
  const c = await setup(t)
  const sid = '11111111-2222-4333-8444-555555555555'
  const res = await c.op({ type: 'create', path: '/s.txt', content: 's' }, { 'x-session-id': sid })
  t.equal(res.statusCode, 200, res.body)
  const res2 = await c.op({ type: 'create', path: '/t.txt', content: 't' })
  t.equal(res2.statusCode, 200, res2.body)
  const sid2 = '66666666-7777-4888-8999-aaaaaaaaaaaa'
  const res3 = await c.op({ type: 'create', path: '/u.txt', content: 'u', sessionId: sid2 })
  t.equal(res3.statusCode, 200, res3.body)
  const feed = await c.changes(0)
  t.equal(feed.changes[0]?.sessionId, sid, 'X-Session-Id names the session')
  t.equal(feed.changes[1]?.sessionId, c.user.sessionId, 'without it, the token\'s sid')
  t.equal(feed.changes[2]?.sessionId, sid2, 'an op\'s sessionId names the session')
})
