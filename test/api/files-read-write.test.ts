import t from 'tap'
import { randomBytes } from 'node:crypto'
import { isError, type ChangesResult, type DeleteResult, type DirBody, type ErrorReply, type FileBody, type FileMeta, type WriteResult } from '../helpers/http.js'
import { DIGITS, dirMeta, ISO, setup, sha256 } from '../helpers/files.js'

/** PUT, GET and DELETE on /v1/workspaces/{id}/files/{path}: contract "Files and directories". */

t.test('PUT creates a file: 201 { file: meta, revision }', async t => {
  const c = await setup(t)
  const content = 'export const x = 1\n'
  const res = await c.put('/src/hello.ts', { content })
  t.equal(res.statusCode, 201, res.body)
  const body = res.json<WriteResult>()
  t.same(Object.keys(body).sort(), ['file', 'revision'])
  t.equal(body.revision, 1, 'first change of a new workspace is revision 1')
  t.match(body.file, {
    path: '/src/hello.ts',
    name: 'hello.ts',
    kind: 'file',
    size: Buffer.byteLength(content),
    mimeType: 'text/typescript',
    etag: DIGITS,
    version: 1,
    sha256: sha256(Buffer.from(content, 'utf8')),
    metadata: {},
    createdAt: ISO,
    updatedAt: ISO,
    createdBy: c.user.id,
    updatedBy: c.user.id
  })
  t.same(Object.keys(body.file).sort(), ['createdAt', 'createdBy', 'etag', 'executable', 'kind', 'metadata', 'mimeType', 'name', 'path', 'sha256', 'size', 'updatedAt', 'updatedBy', 'version'], 'meta has exactly the contract fields (no content)')
  t.equal(body.file.etag, String(body.revision), 'etag is the revision of the entry\'s last change')
  t.equal(await c.revision(), 1, 'workspace revision is 1')
})

t.test('sha256 and size are of the bytes, with multibyte text', async t => {
  const c = await setup(t)
  const content = 'héllo wörld ✓ 𝄞\n'
  const body = await c.write('/t.md', content)
  t.equal(body.file.size, Buffer.byteLength(content, 'utf8'))
  t.not(body.file.size, content.length, 'size counts bytes, not UTF-16 units')
  t.equal(body.file.sha256, sha256(Buffer.from(content, 'utf8')))
  t.equal(body.file.mimeType, 'text/markdown')
})

t.test('mimeType by extension, by content, and explicit', async t => {
  const c = await setup(t)
  const cases: Array<[string, string]> = [
    ['/a.ts', 'text/typescript'], ['/a.js', 'text/javascript'], ['/a.json', 'application/json'],
    ['/a.md', 'text/markdown'], ['/a.css', 'text/css'], ['/a.html', 'text/html'], ['/a.py', 'text/x-python']
  ]
  for (const [path, mime] of cases) {
    const res = await c.put(path, { content: '{}' })
    t.equal(res.statusCode, 201, res.body)
    t.equal(res.json<WriteResult>().file.mimeType, mime, `${path} → ${mime}`)
  }
  const text = await c.write('/README', 'plain text, no extension')
  t.equal(text.file.mimeType, 'text/plain', 'no extension, utf8 content → text/plain')
  const bin = await c.write('/blob', Buffer.from([0xff, 0xfe, 0x00, 0x80]).toString('base64'), { encoding: 'base64' })
  t.equal(bin.file.mimeType, 'application/octet-stream', 'no extension, binary → application/octet-stream')
  const explicit = await c.write('/x.ts', 'x', { mimeType: 'application/x-custom' })
  t.equal(explicit.file.mimeType, 'application/x-custom', 'an explicit mimeType wins')
  t.equal((await c.read('/x.ts')).mimeType, 'application/x-custom', 'and is stored')
})

t.test('PUT updates a file: 200, version 2, new etag, revision + 1', async t => {
  const c = await setup(t)
  const first = await c.write('/a.txt', 'one')
  const res = await c.put('/a.txt', { content: 'two!' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<WriteResult>()
  t.equal(body.revision, first.revision + 1)
  t.equal(body.file.version, 2)
  t.not(body.file.etag, first.file.etag, 'etag changed')
  t.match(body.file.etag, DIGITS)
  t.equal(body.file.size, 4)
  t.equal(body.file.sha256, sha256('two!'))
  t.equal(body.file.createdAt, first.file.createdAt, 'createdAt kept')
  t.ok(Date.parse(body.file.updatedAt) >= Date.parse(first.file.updatedAt), 'updatedAt not earlier')
  t.equal((await c.read('/a.txt')).content, 'two!')
  t.equal(await c.revision(), 2)
})

t.test('If-Match', async t => {
  const c = await setup(t)
  const first = await c.write('/a.txt', 'one')

  await t.test('current etag (quoted) → 200', async t => {
    const res = await c.put('/a.txt', { content: 'two' }, { 'if-match': `"${first.file.etag}"` })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json<WriteResult>().file.version, 2)
  })

  const current = await c.read('/a.txt')

  await t.test('current etag unquoted → 200 (quotes optional)', async t => {
    const res = await c.put('/a.txt', { content: 'three' }, { 'if-match': current.etag })
    t.equal(res.statusCode, 200, res.body)
  })

  await t.test('stale etag → 412 PRECONDITION_FAILED with details.current, nothing written', async t => {
    const now = await c.read('/a.txt')
    const before = await c.revision()
    const res = await c.put('/a.txt', { content: 'lost update' }, { 'if-match': `"${first.file.etag}"` })
    isError(t, res, 412, 'PRECONDITION_FAILED')
    t.match(res.json<ErrorReply>().details, { current: { path: '/a.txt', etag: now.etag, version: now.version, kind: 'file' } })
    t.equal((await c.read('/a.txt')).content, 'three', 'content unchanged')
    await c.unchanged(t, before)
  })

  await t.test('If-Match on a missing file → 412 with details.current null', async t => {
    const before = await c.revision()
    const res = await c.put('/nope.txt', { content: 'x' }, { 'if-match': '"1"' })
    isError(t, res, 412, 'PRECONDITION_FAILED')
    t.equal(res.json<ErrorReply>().details?.current, null)
    t.equal((await c.get('/nope.txt')).statusCode, 404, 'not created')
    await c.unchanged(t, before)
  })
})

t.test('If-None-Match: *', async t => {
  const c = await setup(t)
  const first = await c.write('/a.txt', 'one')
  const before = await c.revision()
  const res = await c.put('/a.txt', { content: 'two' }, { 'if-none-match': '*' })
  isError(t, res, 412, 'PRECONDITION_FAILED', 'on an existing file')
  t.match(res.json<ErrorReply>().details, { current: { path: '/a.txt', etag: first.file.etag } })
  t.equal((await c.read('/a.txt')).content, 'one', 'content unchanged')
  await c.unchanged(t, before)

  const created = await c.put('/b.txt', { content: 'new' }, { 'if-none-match': '*' })
  t.equal(created.statusCode, 201, `on a new path: ${created.body}`)
  t.equal(created.json<WriteResult>().file.version, 1)
})

t.test('GET a file as JSON', async t => {
  const c = await setup(t)
  const content = 'const s = "ü"\n'
  const w = await c.write('/src/a.ts', content)

  const res = await c.get('/src/a.ts')
  t.equal(res.statusCode, 200, res.body)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json<FileBody>()
  t.equal(body.content, content)
  t.equal(body.encoding, 'utf8')
  const { content: _c, encoding: _e, ...meta } = body
  t.same(meta, w.file, 'the meta is the one the write returned')
  t.equal(res.headers.etag, `"${w.file.etag}"`, 'ETag header is the quoted etag')

  await t.test('binary content comes back base64', async t => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x7f])
    await c.write('/bin/x.dat', bytes.toString('base64'), { encoding: 'base64' })
    const got = await c.read('/bin/x.dat')
    t.equal(got.encoding, 'base64')
    t.same(Buffer.from(got.content, 'base64'), bytes)
    t.equal(got.sha256, sha256(bytes))
    t.equal(got.size, bytes.length)
  })

  await t.test('valid UTF-8 written as base64 comes back utf8', async t => {
    await c.write('/b64text.txt', Buffer.from('hi ✓', 'utf8').toString('base64'), { encoding: 'base64' })
    const got = await c.read('/b64text.txt')
    t.equal(got.encoding, 'utf8')
    t.equal(got.content, 'hi ✓')
  })

  await t.test('an empty file', async t => {
    const w = await c.write('/empty.txt', '')
    t.equal(w.file.size, 0)
    t.equal(w.file.sha256, sha256(Buffer.alloc(0)))
    const got = await c.read('/empty.txt')
    t.equal(got.content, '')
  })

  await t.test('missing → 404 FILE_NOT_FOUND', async t => {
    isError(t, await c.get('/src/missing.ts'), 404, 'FILE_NOT_FOUND')
    isError(t, await c.get('/nodir/missing.ts'), 404, 'FILE_NOT_FOUND')
  })

  await t.test('a path below a file → 404 or 409, never 200', async t => {
    const res = await c.get('/src/a.ts/x')
    t.ok(res.statusCode === 404 || res.statusCode === 409, `status ${res.statusCode}`)
  })
})

t.test('GET ?format=raw and conditional GET', async t => {
  const c = await setup(t)
  const bytes = randomBytes(300)
  const w = await c.write('/img/p.png', bytes.toString('base64'), { encoding: 'base64' })

  const raw = await c.get('/img/p.png', '?format=raw')
  t.equal(raw.statusCode, 200)
  t.same(raw.rawPayload, bytes, 'the exact bytes')
  t.equal(raw.headers['content-type']?.toString().split(';')[0], w.file.mimeType, 'Content-Type is the mimeType')
  t.equal(w.file.mimeType, 'image/png')
  t.equal(raw.headers.etag, `"${w.file.etag}"`, 'raw has the ETag header too')

  const text = await c.write('/a.ts', 'let a = 1')
  const rawText = await c.get('/a.ts', '?format=raw')
  t.equal(rawText.body, 'let a = 1')
  t.equal(rawText.headers['content-type']?.toString().split(';')[0], 'text/typescript')

  const notModified = await c.get('/a.ts', '', { 'if-none-match': `"${text.file.etag}"` })
  t.equal(notModified.statusCode, 304, 'If-None-Match with the current etag → 304')
  t.equal(notModified.body, '', '304 has no body')

  const rawNotModified = await c.get('/img/p.png', '?format=raw', { 'if-none-match': `"${w.file.etag}"` })
  t.equal(rawNotModified.statusCode, 304, 'raw also honours If-None-Match')

  await c.write('/a.ts', 'let a = 2')
  const modified = await c.get('/a.ts', '', { 'if-none-match': `"${text.file.etag}"` })
  t.equal(modified.statusCode, 200, 'a stale etag → 200 with the content')
  t.equal(modified.json<FileBody>().content, 'let a = 2')
  t.not(modified.headers.etag, `"${text.file.etag}"`)
})

t.test('GET a directory: children one level, sorted by name, meta only', async t => {
  const c = await setup(t)
  await c.write('/d/b.txt', 'b')
  await c.write('/d/sub/deep.txt', 'deep')
  await c.write('/d/a.txt', 'a')
  await c.write('/d/c.md', 'c')
  await c.write('/other.txt', 'o')

  const res = await c.get('/d')
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<DirBody>()
  t.match(body, dirMeta('/d'))
  t.same(body.children.map(ch => ch.name), ['a.txt', 'b.txt', 'c.md', 'sub'])
  t.same(body.children.map(ch => ch.path), ['/d/a.txt', '/d/b.txt', '/d/c.md', '/d/sub'])
  t.match(body.children[3], dirMeta('/d/sub'))
  t.match(body.children[0], { kind: 'file', size: 1, sha256: sha256('a'), mimeType: 'text/plain' })
  for (const ch of body.children) t.notOk('content' in ch, `${ch.path} has no content`)
  t.notOk('content' in body, 'a directory has no content')

  // the listing's validator: it must change when a child changes (the directory's own etag does not)
  const etag = res.headers.etag
  t.type(etag, 'string', 'a directory has an ETag header too')
  const dirEtag = String(etag)
  t.equal((await c.get('/d', '', { 'if-none-match': dirEtag })).statusCode, 304, 'If-None-Match on a directory → 304')
  await c.write('/d/a.txt', 'a changed')
  const afterChildUpdate = await c.get('/d', '', { 'if-none-match': dirEtag })
  t.equal(afterChildUpdate.statusCode, 200, 'a child\'s update changes the listing → 200')
  t.not(afterChildUpdate.headers.etag, dirEtag)
  t.equal(afterChildUpdate.json<DirBody>().children[0]?.size, 9, 'with the new child meta')
  const etag2 = String(afterChildUpdate.headers.etag)
  await c.write('/d/new.txt', 'n')
  const afterNewChild = await c.get('/d', '', { 'if-none-match': etag2 })
  t.equal(afterNewChild.statusCode, 200, 'a new child changes the listing → 200')
  t.same(afterNewChild.json<DirBody>().children.map(ch => ch.name), ['a.txt', 'b.txt', 'c.md', 'new.txt', 'sub'])
})

t.test('GET the root', async t => {
  const c = await setup(t)
  await c.write('/z.txt', 'z')
  await c.write('/a/b.txt', 'b')
  const rev = await c.revision()
  for (const url of [`/v1/workspaces/${c.ws}/files/`, `/v1/workspaces/${c.ws}/files`]) {
    const res = await c.getUrl(url)
    t.equal(res.statusCode, 200, `${url}: ${res.body}`)
    const body = res.json<DirBody>()
    t.match(body, { path: '/', name: '', kind: 'directory', size: null, sha256: null, mimeType: null, version: 0, metadata: {}, etag: String(rev), createdBy: c.user.id })
    t.same(body.children.map(ch => ch.path), ['/a', '/z.txt'], 'one level, sorted')
  }
  const empty = await setup(t)
  const res = await empty.getUrl(`/v1/workspaces/${empty.ws}/files/`)
  t.equal(res.statusCode, 200, 'the root of an empty workspace exists')
  t.same(res.json<DirBody>().children, [])
})

t.test('a write creates missing parent directories, in the same change', async t => {
  const c = await setup(t)
  const w = await c.write('/x/y/z.txt', 'z')
  t.equal(w.revision, 1)
  for (const dir of ['/x', '/x/y']) {
    const res = await c.get(dir)
    t.equal(res.statusCode, 200, `${dir}: ${res.body}`)
    t.match(res.json<DirBody>(), dirMeta(dir), `${dir} is a directory`)
  }
  t.same((await c.get('/x')).json<DirBody>().children.map(ch => ch.path), ['/x/y'])
  const changes = await c.changes(0)
  t.equal(changes.changes.length, 1, 'one change only: the parents have none of their own')
  t.match(changes.changes[0], { revision: 1, path: '/x/y/z.txt', kind: 'file' })
  t.equal(await c.revision(), 1)
})

t.test('a write under an existing file → 409 NOT_A_DIRECTORY', async t => {
  const c = await setup(t)
  await c.write('/f.txt', 'f')
  const before = await c.revision()
  isError(t, await c.put('/f.txt/child.txt', { content: 'x' }), 409, 'NOT_A_DIRECTORY')
  isError(t, await c.put('/f.txt/deeper/child.txt', { content: 'x' }), 409, 'NOT_A_DIRECTORY', 'deeper')
  await c.unchanged(t, before)
  const f = await c.read('/f.txt')
  t.equal(f.kind, 'file', 'the file is still a file')
  t.equal(f.content, 'f')
})

t.test('PUT to a directory → 400 IS_A_DIRECTORY; PUT / → 400 INVALID_PATH', async t => {
  const c = await setup(t)
  await c.write('/d/a.txt', 'a')
  const before = await c.revision()
  isError(t, await c.put('/d', { content: 'x' }), 400, 'IS_A_DIRECTORY')
  isError(t, await c.putUrl(`/v1/workspaces/${c.ws}/files/`, { content: 'x' }), 400, 'INVALID_PATH', 'the root')
  await c.unchanged(t, before)
  t.equal((await c.get('/d')).json<DirBody>().kind, 'directory')
})

t.test('DELETE', async t => {
  const c = await setup(t)

  await t.test('a file → 200 { revision, deleted: 1 }', async t => {
    await c.write('/a.txt', 'a')
    const before = await c.revision()
    const res = await c.del('/a.txt')
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json<DeleteResult>(), { revision: before + 1, deleted: 1 })
    isError(t, await c.get('/a.txt'), 404, 'FILE_NOT_FOUND', 'gone')
    t.equal(await c.revision(), before + 1)
  })

  await t.test('a directory with 3 files → deleted 4, one change', async t => {
    await c.write('/d/1.txt', '1')
    await c.write('/d/2.txt', '2')
    await c.write('/d/3.txt', '3')
    await c.write('/keep.txt', 'k')
    const before = await c.revision()
    const res = await c.del('/d')
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json<DeleteResult>(), { revision: before + 1, deleted: 4 })
    for (const p of ['/d', '/d/1.txt', '/d/2.txt', '/d/3.txt']) isError(t, await c.get(p), 404, 'FILE_NOT_FOUND', p)
    t.equal((await c.read('/keep.txt')).content, 'k')
    const feed = await c.changes(before)
    t.equal(feed.changes.length, 1, 'one change for the whole directory')
    t.match(feed.changes[0], { revision: before + 1, op: 'delete', kind: 'directory', path: '/d', etag: null })
  })

  await t.test('a nested directory counts every entry', async t => {
    await c.write('/n/a/b/c.txt', 'c')
    await c.write('/n/x.txt', 'x')
    const res = await c.del('/n')
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json<DeleteResult>().deleted, 5, '/n, /n/a, /n/a/b, /n/a/b/c.txt, /n/x.txt')
  })

  await t.test('missing → 404 FILE_NOT_FOUND', async t => {
    const before = await c.revision()
    isError(t, await c.del('/missing.txt'), 404, 'FILE_NOT_FOUND')
    await c.unchanged(t, before)
  })

  await t.test('If-Match stale → 412, current → 200', async t => {
    const w1 = await c.write('/m.txt', '1')
    const w2 = await c.write('/m.txt', '2')
    const before = await c.revision()
    const res = await c.del('/m.txt', { 'if-match': `"${w1.file.etag}"` })
    isError(t, res, 412, 'PRECONDITION_FAILED')
    t.match(res.json<ErrorReply>().details, { current: { etag: w2.file.etag, version: 2 } })
    t.equal((await c.read('/m.txt')).content, '2', 'still there')
    await c.unchanged(t, before)
    const ok = await c.del('/m.txt', { 'if-match': `"${w2.file.etag}"` })
    t.equal(ok.statusCode, 200, ok.body)
  })

  await t.test('DELETE / → 400 INVALID_PATH', async t => {
    await c.write('/still.txt', 's')
    const before = await c.revision()
    const res = await c.app.inject({ method: 'DELETE', url: `/v1/workspaces/${c.ws}/files/`, headers: c.user.auth })
    isError(t, res, 400, 'INVALID_PATH')
    await c.unchanged(t, before)
    t.equal((await c.read('/still.txt')).content, 's')
  })

  await t.test('a deleted path can be written again, with a fresh etag', async t => {
    const w1 = await c.write('/again.txt', 'one')
    await c.del('/again.txt')
    const res = await c.put('/again.txt', { content: 'two' })
    t.equal(res.statusCode, 201, res.body)
    const w2 = res.json<WriteResult>()
    t.equal(w2.file.version, 1)
    t.not(w2.file.etag, w1.file.etag, 'etags never repeat for a path')
  })
})

t.test('base64 content round-trips byte for byte', async t => {
  const c = await setup(t)
  const all = Buffer.alloc(256)
  for (let i = 0; i < 256; i++) all[i] = i
  const bytes = Buffer.concat([all, randomBytes(4099)])
  const w = await c.write('/bytes.bin', bytes.toString('base64'), { encoding: 'base64' })
  t.equal(w.file.size, bytes.length)
  t.equal(w.file.sha256, sha256(bytes))
  t.same(await c.bytes('/bytes.bin'), bytes, 'raw bytes identical')
  const json = await c.read('/bytes.bin')
  t.equal(json.encoding, 'base64')
  t.ok(Buffer.from(json.content, 'base64').equals(bytes), 'JSON base64 decodes to the same bytes')

  // unpadded base64 is accepted (padding optional)
  const two = Buffer.from([1, 2])
  const unpadded = two.toString('base64').replace(/=+$/, '')
  t.equal(unpadded, 'AQI')
  const res = await c.put('/two.bin', { content: unpadded, encoding: 'base64' })
  t.equal(res.statusCode, 201, res.body)
  t.same(await c.bytes('/two.bin'), two)
})

t.test('metadata', async t => {
  const c = await setup(t)
  const metadata = { lang: 'ts', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null }, unicode: 'ü✓' }
  const w = await c.write('/m.ts', 'x', { metadata })
  t.same(w.file.metadata, metadata, 'returned by the write')
  t.same((await c.read('/m.ts')).metadata, metadata, 'round-trips through GET')
  const tree = await c.tree('/', 0)
  t.same(tree.entries.find((e: FileMeta) => e.path === '/m.ts')?.metadata, metadata, 'and through /tree')

  const ok = { big: 'a'.repeat(16 * 1024 - 100) }
  const res = await c.put('/ok.ts', { content: 'x', metadata: ok })
  t.equal(res.statusCode, 201, `metadata just under 16 KiB is fine: ${res.statusCode}`)

  const before = await c.revision()
  const big = { big: 'a'.repeat(16 * 1024 + 1) }
  isError(t, await c.put('/big.ts', { content: 'x', metadata: big }), 400, 'VALIDATION_FAILED', 'metadata over 16 KiB')
  isError(t, await c.put('/m.ts', { content: 'y', metadata: big }), 400, 'VALIDATION_FAILED', 'over 16 KiB on an update')
  isError(t, await c.put('/arr.ts', { content: 'x', metadata: [1, 2] }), 400, 'VALIDATION_FAILED', 'metadata must be an object')
  await c.unchanged(t, before)
  isError(t, await c.get('/big.ts'), 404, 'FILE_NOT_FOUND', 'not created')
  t.equal((await c.read('/m.ts')).content, 'x', 'not updated')
})

t.test('a PUT change appears in /changes with the file\'s meta', async t => {
  const c = await setup(t)
  const w = await c.write('/a.ts', 'abc')
  const u = await c.write('/a.ts', 'abcd')
  const feed: ChangesResult = await c.changes(0)
  t.equal(feed.head, 2)
  t.match(feed.changes, [
    { revision: 1, kind: 'file', path: '/a.ts', newPath: null, etag: w.file.etag, version: 1, sha256: sha256('abc'), size: 3, userId: c.user.id, sessionId: c.user.sessionId, at: ISO },
    { revision: 2, kind: 'file', path: '/a.ts', etag: u.file.etag, version: 2, sha256: sha256('abcd'), size: 4 }
  ])
})
