import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { registerUser } from '../helpers/app.js'
import { isError, type DirBody, type ErrorReply, type Res, type WriteResult } from '../helpers/http.js'
import { another, Ctx, setup, sha256 } from '../helpers/files.js'

/** Everything the files API must refuse (contract "Paths", "Conventions", "Files and directories"), and that refusing changes nothing. */

/** An absolute path of exactly `n` UTF-8 bytes, made of ASCII segments of at most 200 bytes. */
function pathOfBytes (n: number): string {
  let out = ''
  let remaining = n
  let i = 0
  while (remaining > 0) {
    let take = Math.min(201, remaining)
    if (remaining - take === 1) take -= 1
    out += '/' + String.fromCharCode(97 + (i++ % 26)).repeat(take - 1)
    remaining -= take
  }
  return out
}

/** Sends a request (made by `send`) that must be refused, and checks that the workspace revision did not move. */
async function expectRefused (t: Test, c: Ctx, send: () => Promise<Res>, status: number, code: string, label: string): Promise<Res> {
  const before = await c.revision()
  const res = await send()
  isError(t, res, status, code, label)
  await c.unchanged(t, before, label)
  return res
}

t.test('NFD and NFC are one file', async t => {
  const c = await setup(t)
  const nfd = '/caf\u0065\u0301.txt'
  const nfc = '/caf\u00e9.txt'
  t.not(nfd, nfc)
  t.equal(c.filesUrl(nfd).endsWith('cafe%CC%81.txt'), true, 'sent as percent-encoded NFD bytes')
  const res = await c.put(nfd, { content: 'written as NFD' })
  t.equal(res.statusCode, 201, res.body)
  t.equal(res.json<WriteResult>().file.path, nfc, 'stored under the NFC form')
  t.equal(res.json<WriteResult>().file.name, 'caf\u00e9.txt')

  const read = await c.get(nfc)
  t.equal(read.statusCode, 200, 'read back via NFC')
  t.equal(read.json<{ content: string }>().content, 'written as NFD')

  const again = await c.put(nfc, { content: 'written as NFC' })
  t.equal(again.statusCode, 200, 'writing the NFC form updates the same file')
  t.equal(again.json<WriteResult>().file.version, 2)
  t.equal((await c.read(nfd)).content, 'written as NFC', 'and NFD reads it')

  const op = await c.op({ type: 'create', path: nfd, content: 'x' })
  isError(t, op, 409, 'FILE_EXISTS', 'an op with the NFD path finds the NFC file')

  const entries = (await c.tree('/', 0)).entries
  t.equal(entries.length, 1, 'only one entry in the tree')
  t.equal(entries[0]?.path, nfc)

  await c.mkdir('/d\u0307ir')
  const mv = await c.op({ type: 'move', path: nfc, newPath: '/d\u0307ir/x\u0065\u0301' })
  t.equal(mv.statusCode, 200, `move with NFD in both paths: ${mv.body}`)
  t.same((await c.tree('/', 0)).entries.map(e => e.path), ['/\u1e0bir', '/\u1e0bir/x\u00e9'], 'newPath normalised too; the NFD mkdir is the same directory')
})

t.test('URL paths: rejected with 400 INVALID_PATH, nothing written', async t => {
  const c = await setup(t)
  await c.write('/a/b.txt', 'b')
  const base = `/v1/workspaces/${c.ws}/files`
  const body = JSON.stringify({ content: 'x' })

  // app.inject resolves dot segments (WHATWG URL), so these go over a real socket, unresolved
  for (const raw of ['/a/../b.txt', '/a/%2e%2e/b.txt', '/a/%2E%2E/b.txt', '/a/./c.txt', '/a/%2e/c.txt', '/../b.txt', '/a/..']) {
    const before = await c.revision()
    const res = await c.raw('PUT', base + raw, body)
    t.equal(res.statusCode, 400, `PUT ${raw}: ${res.body}`)
    t.match(JSON.parse(res.body), { code: 'INVALID_PATH' }, `PUT ${raw}: INVALID_PATH`)
    await c.unchanged(t, before, raw)
    const get = await c.raw('GET', base + raw)
    t.equal(get.statusCode, 400, `GET ${raw}`)
    const del = await c.raw('DELETE', base + raw)
    t.equal(del.statusCode, 400, `DELETE ${raw}`)
    await c.unchanged(t, before, `DELETE ${raw}`)
  }
  t.equal((await c.read('/a/b.txt')).content, 'b', '/a/b.txt untouched')

  const cases: Array<[string, string]> = [
    ['/a%2Fb.txt', '%2F inside a segment'],
    ['/a%2fb.txt', '%2f inside a segment'],
    ['/a/%2F', 'a segment that is only %2F'],
    ['/a%00b.txt', 'NUL'],
    ['/a%01b.txt', '%01'],
    ['/a%1Fb.txt', '%1F'],
    ['/a%0Ab.txt', 'newline'],
    ['/a%7Fb.txt', '%7F'],
    ['/a%5Cb.txt', 'backslash'],
    ['/a.txt/', 'trailing slash on a file path'],
    ['/a/b.txt/', 'trailing slash on an existing file'],
    ['/a//b.txt', 'empty segment'],
    ['//b.txt', 'empty first segment'],
    ['/%ED%A0%80.txt', 'UTF-8 of a lone surrogate'],
    ['/%FF.txt', 'invalid UTF-8'],
    ['/a%ZZ.txt', 'malformed percent-encoding']
  ]
  for (const [raw, label] of cases) {
    await expectRefused(t, c, async () => await c.putUrl(base + raw, { content: 'x' }), 400, 'INVALID_PATH', `PUT ${label} (${raw})`)
    await expectRefused(t, c, async () => await c.app.inject({ method: 'DELETE', url: base + raw, headers: c.user.auth }), 400, 'INVALID_PATH', `DELETE ${label} (${raw})`)
    isError(t, await c.getUrl(base + raw), 400, 'INVALID_PATH', `GET ${label} (${raw})`)
  }
  t.same((await c.tree('/', 0)).entries.map(e => e.path), ['/a', '/a/b.txt'], 'nothing was created')
})

t.test('segment and path lengths', async t => {
  const c = await setup(t)
  const s255 = 'a'.repeat(255)
  const ok = await c.put('/' + s255, { content: '255' })
  t.equal(ok.statusCode, 201, `a 255-byte segment is fine: ${ok.body.slice(0, 200)}`)
  await expectRefused(t, c, async () => await c.put('/' + 'a'.repeat(256), { content: 'x' }), 400, 'INVALID_PATH', '256-byte segment')
  await expectRefused(t, c, async () => await c.put('/d/' + 'b'.repeat(256) + '/x.txt', { content: 'x' }), 400, 'INVALID_PATH', '256-byte middle segment')

  const mb255 = '\u00e9'.repeat(127) + 'a'
  t.equal(Buffer.byteLength(mb255), 255)
  const okMb = await c.put('/' + mb255, { content: 'x' })
  t.equal(okMb.statusCode, 201, '255 bytes of multibyte text is fine')
  await expectRefused(t, c, async () => await c.put('/' + '\u00e9'.repeat(128), { content: 'x' }), 400, 'INVALID_PATH', '128 × é = 256 bytes (128 characters)')

  const nfdLong = 'e\u0301'.repeat(100) // 300 bytes as NFD, 200 as NFC: measured after normalising
  const okNfd = await c.put('/' + nfdLong, { content: 'x' })
  t.equal(okNfd.statusCode, 201, `the limit applies to the NFC form: ${okNfd.body.slice(0, 200)}`)

  const p1024 = pathOfBytes(1024)
  const p1025 = pathOfBytes(1025)
  t.equal(Buffer.byteLength(p1024), 1024)
  t.equal(Buffer.byteLength(p1025), 1025)
  const okPath = await c.put(p1024, { content: 'x' })
  t.equal(okPath.statusCode, 201, `a 1024-byte path is fine: ${okPath.body.slice(0, 200)}`)
  t.equal(okPath.json<WriteResult>().file.path, p1024)
  await expectRefused(t, c, async () => await c.put(p1025, { content: 'x' }), 400, 'INVALID_PATH', '1025-byte path')
  await expectRefused(t, c, async () => await c.op({ type: 'create', path: p1025, content: 'x' }), 400, 'INVALID_PATH', '1025-byte path in an op')
  await expectRefused(t, c, async () => await c.op({ type: 'create', path: '/' + 'a'.repeat(256) }), 400, 'INVALID_PATH', '256-byte segment in an op')
  const okOp = await c.op({ type: 'copy', path: p1024, newPath: pathOfBytes(1023) })
  t.equal(okOp.statusCode, 200, `a copy to a 1023-byte path: ${okOp.body.slice(0, 200)}`)
  await expectRefused(t, c, async () => await c.op({ type: 'copy', path: p1024, newPath: p1025 }), 400, 'INVALID_PATH', 'newPath of 1025 bytes')
})

t.test('operation body paths', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  await c.write('/d/x.txt', 'x')
  const bad = ['a.txt', '', '/a/../b', '/..', '/./a', '/a/.', '/a//b', '/a/', '/a\\b', '/a\u0000b', '/a\u0001b', '/a\u001fb', '/a\u007fb', '/a\nb']
  for (const p of bad) {
    const label = JSON.stringify(p)
    await expectRefused(t, c, async () => await c.op({ type: 'create', path: p, content: 'x' }), 400, 'INVALID_PATH', `create path ${label}`)
    await expectRefused(t, c, async () => await c.op({ type: 'move', path: '/a.txt', newPath: p }), 400, 'INVALID_PATH', `move newPath ${label}`)
    await expectRefused(t, c, async () => await c.op({ type: 'copy', path: '/d', newPath: p }), 400, 'INVALID_PATH', `copy newPath ${label}`)
  }
  await expectRefused(t, c, async () => await c.op({ type: 'move', path: 'a.txt', newPath: '/b.txt' }), 400, 'INVALID_PATH', 'relative source')
  await expectRefused(t, c, async () => await c.op({ type: 'mkdir', path: '/' }), 400, 'INVALID_PATH', 'mkdir /')
  await expectRefused(t, c, async () => await c.op({ type: 'update', path: '/', content: 'x' }), 400, 'INVALID_PATH', 'update /')
  await expectRefused(t, c, async () => await c.op({ type: 'move', path: '/a.txt', newPath: '/' }), 400, 'INVALID_PATH', 'move onto /')

  await expectRefused(t, c, async () => await c.app.inject({
    method: 'POST',
    url: `/v1/workspaces/${c.ws}/operations`,
    headers: { ...c.user.auth, 'content-type': 'application/json' },
    payload: '{"type":"create","path":"/a\\ud800b","content":"x"}'
  }), 400, 'INVALID_PATH', 'lone surrogate in a path')

  const batch = await expectRefused(t, c, async () => await c.batch([{ type: 'create', path: '/ok.txt', content: 'ok' }, { type: 'move', path: '/a.txt', newPath: 'b.txt' }]), 400, 'INVALID_PATH', 'in a batch')
  t.match(batch.json<ErrorReply>().details, { index: 1, code: 'INVALID_PATH' })
  isError(t, await c.get('/ok.txt'), 404, 'FILE_NOT_FOUND', 'the batch applied nothing')
  t.same((await c.tree('/', 0)).entries.map(e => e.path), ['/a.txt', '/d', '/d/x.txt'])
})

t.test('malformed bodies → 400 VALIDATION_FAILED', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'old')
  const url = c.filesUrl('/a.txt')
  const opsUrl = `/v1/workspaces/${c.ws}/operations`
  const post = async (u: string, payload: string): Promise<Res> =>
    await c.app.inject({ method: 'POST', url: u, payload, headers: { ...c.user.auth, 'content-type': 'application/json' } })

  await expectRefused(t, c, async () => await c.putUrl(url, '{"content": "x"'), 400, 'VALIDATION_FAILED', 'PUT malformed JSON')
  await expectRefused(t, c, async () => await c.putUrl(url, ''), 400, 'VALIDATION_FAILED', 'PUT empty body')
  await expectRefused(t, c, async () => await c.putUrl(url, '[]'), 400, 'VALIDATION_FAILED', 'PUT an array')
  await expectRefused(t, c, async () => await c.put('/a.txt', { content: 'x', extra: 1 }), 400, 'VALIDATION_FAILED', 'PUT unknown property')
  await expectRefused(t, c, async () => await c.put('/a.txt', { content: 123 }), 400, 'VALIDATION_FAILED', 'PUT content: 123')
  await expectRefused(t, c, async () => await c.put('/a.txt', { content: null }), 400, 'VALIDATION_FAILED', 'PUT content: null')
  await expectRefused(t, c, async () => await c.put('/a.txt', {}), 400, 'VALIDATION_FAILED', 'PUT without content')
  await expectRefused(t, c, async () => await c.put('/a.txt', { content: 'x', encoding: 'hex' }), 400, 'VALIDATION_FAILED', 'PUT encoding: hex')
  await expectRefused(t, c, async () => await c.put('/a.txt', { content: 'x', metadata: 'm' }), 400, 'VALIDATION_FAILED', 'PUT metadata: string')
  await expectRefused(t, c, async () => await c.put('/a.txt', { content: 'x', mimeType: 5 }), 400, 'VALIDATION_FAILED', 'PUT mimeType: 5')

  await expectRefused(t, c, async () => await post(opsUrl, '{"type":'), 400, 'VALIDATION_FAILED', 'op malformed JSON')
  await expectRefused(t, c, async () => await c.op({ type: 'update', path: '/a.txt', content: 'x', bogus: true }), 400, 'VALIDATION_FAILED', 'op unknown property')
  await expectRefused(t, c, async () => await c.op({ type: 'update', path: '/a.txt', content: 123 }), 400, 'VALIDATION_FAILED', 'op content: 123')
  await expectRefused(t, c, async () => await c.op({ type: 'update', path: 42, content: 'x' }), 400, 'VALIDATION_FAILED', 'op path: 42')
  await expectRefused(t, c, async () => await c.op({ type: 'move', path: '/a.txt', newPath: '/b.txt', overwrite: 'yes' }), 400, 'VALIDATION_FAILED', 'op overwrite: "yes"')
  await expectRefused(t, c, async () => await post(`${opsUrl}/batch`, '{"operations":[{"type":"create","path":"/x"}'), 400, 'VALIDATION_FAILED', 'batch malformed JSON')
  await expectRefused(t, c, async () => await c.app.inject({ method: 'POST', url: `${opsUrl}/batch`, payload: { operations: [{ type: 'create', path: '/x' }], extra: 1 }, headers: c.user.auth }), 400, 'VALIDATION_FAILED', 'batch unknown property')
  await expectRefused(t, c, async () => await c.batch([{ type: 'create', path: '/x', content: 5 }]), 400, 'VALIDATION_FAILED', 'batch op with content: 5')

  const res = await c.put('/a.txt', { content: 123 })
  t.match(res.json<ErrorReply>().details, { errors: Array }, 'VALIDATION_FAILED details carry the schema errors')
  t.equal((await c.read('/a.txt')).content, 'old', 'the file still has the old content')
})

t.test('wrong content type → 415 UNSUPPORTED_MEDIA_TYPE', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'old')
  const json = JSON.stringify({ content: 'new' })
  for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
    await expectRefused(t, c, async () => await c.putUrl(c.filesUrl('/a.txt'), json, { 'content-type': type }), 415, 'UNSUPPORTED_MEDIA_TYPE', `PUT ${type}`)
    await expectRefused(t, c, async () => await c.app.inject({
      method: 'POST', url: `/v1/workspaces/${c.ws}/operations`, payload: JSON.stringify({ type: 'update', path: '/a.txt', content: 'new' }), headers: { ...c.user.auth, 'content-type': type }
    }), 415, 'UNSUPPORTED_MEDIA_TYPE', `POST /operations ${type}`)
  }
  t.equal((await c.read('/a.txt')).content, 'old')
  const withCharset = await c.putUrl(c.filesUrl('/a.txt'), json, { 'content-type': 'application/json; charset=utf-8' })
  t.equal(withCharset.statusCode, 200, 'application/json; charset=utf-8 is accepted')
})

t.test('MAX_FILE_BYTES (1024 here)', async t => {
  const c = await setup(t, { MAX_FILE_BYTES: '1024' })
  const exact = await c.put('/exact.txt', { content: 'a'.repeat(1024) })
  t.equal(exact.statusCode, 201, 'exactly MAX_FILE_BYTES is fine')
  t.equal(exact.json<WriteResult>().file.size, 1024)
  const exactB64 = await c.put('/exact.bin', { content: Buffer.alloc(1024, 7).toString('base64'), encoding: 'base64' })
  t.equal(exactB64.statusCode, 201, 'exactly MAX_FILE_BYTES as base64 is fine')

  await expectRefused(t, c, async () => await c.put('/big.txt', { content: 'a'.repeat(1025) }), 413, 'FILE_TOO_LARGE', 'MAX_FILE_BYTES + 1')
  await expectRefused(t, c, async () => await c.put('/big.txt', { content: '\u00e9'.repeat(513) }), 413, 'FILE_TOO_LARGE', '513 characters but 1026 bytes')
  await expectRefused(t, c, async () => await c.put('/big.bin', { content: Buffer.alloc(1025, 1).toString('base64'), encoding: 'base64' }), 413, 'FILE_TOO_LARGE', '1025 bytes as base64')
  await expectRefused(t, c, async () => await c.put('/exact.txt', { content: 'b'.repeat(1025) }), 413, 'FILE_TOO_LARGE', 'an update over the limit')
  await expectRefused(t, c, async () => await c.op({ type: 'create', path: '/big.txt', content: 'a'.repeat(1025) }), 413, 'FILE_TOO_LARGE', 'op create')
  await expectRefused(t, c, async () => await c.op({ type: 'update', path: '/exact.txt', content: 'a'.repeat(1025) }), 413, 'FILE_TOO_LARGE', 'op update')
  const batch = await expectRefused(t, c, async () => await c.batch([{ type: 'create', path: '/ok.txt', content: 'ok' }, { type: 'create', path: '/big.txt', content: 'a'.repeat(1025) }]), 413, 'FILE_TOO_LARGE', 'in a batch')
  t.match(batch.json<ErrorReply>().details, { index: 1, code: 'FILE_TOO_LARGE' })
  t.equal((await c.read('/exact.txt')).content, 'a'.repeat(1024), 'the file still has the old content')
  t.same((await c.tree('/', 0)).entries.map(e => e.path), ['/exact.bin', '/exact.txt'])
})

t.test('the default MAX_FILE_BYTES (10 MiB) via base64', async t => {
  const c = await setup(t)
  const max = 10 * 1024 * 1024
  const over = Buffer.alloc(max + 1, 0xab)
  await expectRefused(t, c, async () => await c.put('/huge.bin', { content: over.toString('base64'), encoding: 'base64' }), 413, 'FILE_TOO_LARGE', '10 MiB + 1 byte')
  isError(t, await c.get('/huge.bin'), 404, 'FILE_NOT_FOUND', 'not stored')

  const exact = over.subarray(0, max)
  const res = await c.put('/max.bin', { content: exact.toString('base64'), encoding: 'base64' })
  t.equal(res.statusCode, 201, `exactly 10 MiB as base64 fits the route's body limit: ${res.body.slice(0, 200)}`)
  t.equal(res.json<WriteResult>().file.size, max)
  t.equal(res.json<WriteResult>().file.sha256, sha256(exact))
})

t.test('invalid base64 → 400 VALIDATION_FAILED', async t => {
  const c = await setup(t)
  await c.write('/a.bin', Buffer.from([1, 2, 3]).toString('base64'), { encoding: 'base64' })
  for (const bad of ['abc$', 'ab c', 'QUJD\n', 'abcde', '-_-_', 'QQ==QQ==', 'Q===', '=QQQ']) {
    await expectRefused(t, c, async () => await c.put('/a.bin', { content: bad, encoding: 'base64' }), 400, 'VALIDATION_FAILED', `PUT ${JSON.stringify(bad)}`)
    await expectRefused(t, c, async () => await c.op({ type: 'create', path: '/b.bin', content: bad, encoding: 'base64' }), 400, 'VALIDATION_FAILED', `op ${JSON.stringify(bad)}`)
  }
  t.same(await c.bytes('/a.bin'), Buffer.from([1, 2, 3]), 'old content kept')
})

t.test('a lone surrogate in utf8 content → 400 VALIDATION_FAILED', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'old')
  for (const payload of ['{"content":"\\ud800"}', '{"content":"a\\udc00b"}', '{"content":"\\ude00\\ud83d"}']) {
    await expectRefused(t, c, async () => await c.putUrl(c.filesUrl('/a.txt'), payload), 400, 'VALIDATION_FAILED', `PUT ${payload}`)
    await expectRefused(t, c, async () => await c.putUrl(c.filesUrl('/new.txt'), payload), 400, 'VALIDATION_FAILED', `PUT new ${payload}`)
  }
  await expectRefused(t, c, async () => await c.app.inject({
    method: 'POST',
    url: `/v1/workspaces/${c.ws}/operations`,
    headers: { ...c.user.auth, 'content-type': 'application/json' },
    payload: '{"type":"update","path":"/a.txt","content":"\\ud800"}'
  }), 400, 'VALIDATION_FAILED', 'op update')
  t.equal((await c.read('/a.txt')).content, 'old')
  const pair = await c.putUrl(c.filesUrl('/a.txt'), '{"content":"\\ud83d\\ude00"}')
  t.equal(pair.statusCode, 200, 'a proper surrogate pair is fine')
  t.equal((await c.read('/a.txt')).content, '\u{1f600}')
})

t.test('access: other workspaces, roles and permissions', async t => {
  const owner = await setup(t)
  await owner.write('/secret.txt', 'secret')
  const stranger = await another(owner.app)
  const fileUrl = owner.filesUrl('/secret.txt')
  const wsBase = `/v1/workspaces/${owner.ws}`

  await t.test('another user\'s workspace → 404 WORKSPACE_NOT_FOUND', async t => {
    const h = stranger.user.auth
    const reqs: Array<[string, () => Promise<Res>]> = [
      ['GET file', async () => await owner.app.inject({ method: 'GET', url: fileUrl, headers: h })],
      ['GET raw', async () => await owner.app.inject({ method: 'GET', url: fileUrl + '?format=raw', headers: h })],
      ['GET root', async () => await owner.app.inject({ method: 'GET', url: `${wsBase}/files/`, headers: h })],
      ['PUT', async () => await owner.app.inject({ method: 'PUT', url: fileUrl, payload: { content: 'pwned' }, headers: h })],
      ['PUT new', async () => await owner.app.inject({ method: 'PUT', url: owner.filesUrl('/new.txt'), payload: { content: 'pwned' }, headers: h })],
      ['DELETE', async () => await owner.app.inject({ method: 'DELETE', url: fileUrl, headers: h })],
      ['op', async () => await owner.app.inject({ method: 'POST', url: `${wsBase}/operations`, payload: { type: 'delete', path: '/secret.txt' }, headers: h })],
      ['batch', async () => await owner.app.inject({ method: 'POST', url: `${wsBase}/operations/batch`, payload: { operations: [{ type: 'delete', path: '/secret.txt' }] }, headers: h })],
      ['tree', async () => await owner.app.inject({ method: 'GET', url: `${wsBase}/tree`, headers: h })],
      ['changes', async () => await owner.app.inject({ method: 'GET', url: `${wsBase}/changes?since=0`, headers: h })]
    ]
    for (const [label, send] of reqs) await expectRefused(t, owner, send, 404, 'WORKSPACE_NOT_FOUND', label)
    const missing = new Ctx(owner.app, owner.user, randomUUID())
    isError(t, await missing.get('/x'), 404, 'WORKSPACE_NOT_FOUND', 'a random workspace id')
    isError(t, await missing.put('/x', { content: 'x' }), 404, 'WORKSPACE_NOT_FOUND', 'PUT to a random workspace id')
    isError(t, await owner.app.inject({ method: 'GET', url: '/v1/workspaces/not-a-uuid/files/x', headers: owner.user.auth }), 400, 'VALIDATION_FAILED', 'a malformed workspace id')
    t.equal((await owner.read('/secret.txt')).content, 'secret')
  })

  await t.test('a viewer reads but cannot write → 403 FORBIDDEN', async t => {
    const viewer = await registerUser(owner.app)
    const added = await owner.app.inject({ method: 'PUT', url: `${wsBase}/members`, payload: { email: viewer.email, role: 'viewer' }, headers: owner.user.auth })
    t.equal(added.statusCode, 200, added.body)
    const v = new Ctx(owner.app, viewer, owner.ws)
    t.equal((await v.read('/secret.txt')).content, 'secret', 'a viewer can read')
    t.equal((await v.treeRes({})).statusCode, 200, 'and list')
    t.equal((await v.changesRes({ since: 0 })).statusCode, 200, 'and read the feed')
    await expectRefused(t, owner, async () => await v.put('/secret.txt', { content: 'nope' }), 403, 'FORBIDDEN', 'viewer PUT')
    await expectRefused(t, owner, async () => await v.put('/new.txt', { content: 'nope' }), 403, 'FORBIDDEN', 'viewer PUT new')
    await expectRefused(t, owner, async () => await v.del('/secret.txt'), 403, 'FORBIDDEN', 'viewer DELETE')
    await expectRefused(t, owner, async () => await v.op({ type: 'mkdir', path: '/x' }), 403, 'FORBIDDEN', 'viewer op')
    await expectRefused(t, owner, async () => await v.batch([{ type: 'mkdir', path: '/x' }]), 403, 'FORBIDDEN', 'viewer batch')
    t.equal((await owner.read('/secret.txt')).content, 'secret')

    const promoted = await owner.app.inject({ method: 'PUT', url: `${wsBase}/members`, payload: { email: viewer.email, role: 'editor' }, headers: owner.user.auth })
    t.equal(promoted.statusCode, 200)
    const edit = await v.put('/by-editor.txt', { content: 'e' })
    t.equal(edit.statusCode, 201, 'an editor can write')
    t.equal(edit.json<WriteResult>().file.createdBy, viewer.id)
  })

  await t.test('a token without file.write → 403; without file.read → 403 on reads', async t => {
    const sign = owner.app.signAccessToken
    if (sign === undefined) throw new Error('the test app signs its own tokens')
    const readOnly = { authorization: `Bearer ${sign({ sub: owner.user.id, sid: owner.user.sessionId, permissions: ['file.read'] })}` }
    const writeOnly = { authorization: `Bearer ${sign({ sub: owner.user.id, sid: owner.user.sessionId, permissions: ['file.write'] })}` }
    const ok = await owner.app.inject({ method: 'GET', url: fileUrl, headers: readOnly })
    t.equal(ok.statusCode, 200, 'file.read reads')
    await expectRefused(t, owner, async () => await owner.app.inject({ method: 'PUT', url: fileUrl, payload: { content: 'x' }, headers: readOnly }), 403, 'FORBIDDEN', 'PUT without file.write')
    await expectRefused(t, owner, async () => await owner.app.inject({ method: 'POST', url: `${wsBase}/operations`, payload: { type: 'mkdir', path: '/x' }, headers: readOnly }), 403, 'FORBIDDEN', 'op without file.write')
    await expectRefused(t, owner, async () => await owner.app.inject({ method: 'DELETE', url: fileUrl, headers: readOnly }), 403, 'FORBIDDEN', 'DELETE without file.write')
    isError(t, await owner.app.inject({ method: 'GET', url: fileUrl, headers: writeOnly }), 403, 'FORBIDDEN', 'GET without file.read')
    isError(t, await owner.app.inject({ method: 'GET', url: `${wsBase}/tree`, headers: writeOnly }), 403, 'FORBIDDEN', 'tree without file.read')
  })

  await t.test('no token → 401 UNAUTHENTICATED', async t => {
    isError(t, await owner.app.inject({ method: 'GET', url: fileUrl }), 401, 'UNAUTHENTICATED', 'GET')
    await expectRefused(t, owner, async () => await owner.app.inject({ method: 'PUT', url: fileUrl, payload: { content: 'x' } }), 401, 'UNAUTHENTICATED', 'PUT')
    isError(t, await owner.app.inject({ method: 'GET', url: `${wsBase}/changes` }), 401, 'UNAUTHENTICATED', 'changes')
  })

  const root = (await owner.getUrl(`${wsBase}/files/`)).json<DirBody>()
  t.same(root.children.map(ch => ch.path), ['/by-editor.txt', '/secret.txt'], 'in the end only the allowed writes happened')
})
