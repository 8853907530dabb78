import t from 'tap'
import type { Test } from 'tap'
import { isError, isMeta, type ActivityPage, type BatchResult, type ErrorReply, type FileMeta, type OperationResult, type RevertResult } from '../helpers/http.js'
import { setup, sha256, type Ctx } from '../helpers/files.js'
import { listen, registerUser, sleep } from '../helpers/app.js'
import { Ctx as FilesCtx } from '../helpers/files.js'
import { connect } from '../helpers/ws.js'

/** The `edit` operation: docs/api.md "Text edits". */

interface EditResult extends OperationResult { diff: string, dryRun?: boolean }

type Edit = { oldText: string, newText: string, replaceAll?: boolean }

async function edit (c: Ctx, path: string, edits: Edit[], extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<EditResult> {
  const res = await c.op({ type: 'edit', path, edits, ...extra }, headers)
  if (res.statusCode !== 200) throw new Error(`edit ${path}: ${res.statusCode} ${res.body}`)
  return res.json<EditResult>()
}

function meta (data: OperationResult['data']): FileMeta {
  if (!isMeta(data)) throw new Error('not a meta')
  return data
}

/** Asserts a refused edit left the workspace and the file exactly as they were. */
async function untouched (t: Test, c: Ctx, path: string, revision: number, content: string): Promise<void> {
  await c.unchanged(t, revision)
  const file = await c.read(path)
  t.equal(file.content, content, `${path}: content unchanged`)
}

t.test('an edit replaces one occurrence and answers the new meta and a git-style diff', async t => {
  const c = await setup(t)
  const created = await c.write('/src/a.ts', 'const a = 1\nconst b = 2\nconst c = 3\n')
  const body = await edit(c, '/src/a.ts', [{ oldText: 'const b = 2', newText: 'const b = 20' }])
  t.equal(body.success, true)
  t.equal(body.revision, created.revision + 1)
  const after = 'const a = 1\nconst b = 20\nconst c = 3\n'
  t.match(meta(body.data), { path: '/src/a.ts', version: 2, etag: String(body.revision), size: Buffer.byteLength(after), sha256: sha256(after), mimeType: 'text/typescript' })
  t.equal(body.diff, [
    'diff --git a/src/a.ts b/src/a.ts',
    '--- a/src/a.ts',
    '+++ b/src/a.ts',
    '@@ -1,3 +1,3 @@',
    ' const a = 1',
    '-const b = 2',
    '+const b = 20',
    ' const c = 3',
    ''
  ].join('\n'))
  t.notOk('dryRun' in body, 'no dryRun flag on a real edit')
  t.equal((await c.read('/src/a.ts')).content, after)

  await t.test('the change is an update: in the feed, in history, in the activity log, and revertible', async t => {
    const { changes } = await c.changes(created.revision)
    t.match(changes, [{ revision: body.revision, op: 'update', kind: 'file', path: '/src/a.ts', version: 2, sha256: sha256(after) }])
    const activity = await c.getUrl(`/v1/sessions/${c.user.sessionId}/activity`)
    const entries = activity.json<ActivityPage>().items
    t.match(entries.at(-1), { type: 'operation', op: 'edit', path: '/src/a.ts', status: 200, revision: body.revision, details: { edits: 1, dryRun: false } })
    const reverted = await c.send('POST', `/v1/workspaces/${c.ws}/revert`, { toRevision: created.revision })
    t.equal(reverted.statusCode, 200, reverted.body)
    t.match(reverted.json<RevertResult>().changes, [{ op: 'update', path: '/src/a.ts' }])
    t.equal((await c.read('/src/a.ts')).content, 'const a = 1\nconst b = 2\nconst c = 3\n')
  })
})

t.test('edits apply in order: later edits see earlier results (overlapping edits)', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'alpha beta gamma\n')
  const body = await edit(c, '/a.txt', [
    { oldText: 'beta', newText: 'BETA delta' },
    { oldText: 'BETA delta gamma', newText: 'x' },
    { oldText: 'alpha x', newText: 'done' }
  ])
  t.equal((await c.read('/a.txt')).content, 'done\n')
  t.equal(body.diff, 'diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,1 +1,1 @@\n-alpha beta gamma\n+done\n')

  await t.test('an edit whose oldText only existed before an earlier edit fails, and nothing applies', async t => {
    const before = await c.revision()
    const res = await c.op({ type: 'edit', path: '/a.txt', edits: [{ oldText: 'done', newText: 'again' }, { oldText: 'done', newText: 'x' }] })
    isError(t, res, 409, 'EDIT_NO_MATCH', { details: { editIndex: 1 } })
    await untouched(t, c, '/a.txt', before, 'done\n')
  })
})

t.test('no match → 409 EDIT_NO_MATCH with the closest lines; nothing changes', async t => {
  const c = await setup(t)
  const text = 'function main() {\n    return compute(1, 2)\n}\n'
  const created = await c.write('/m.js', text)
  const res = await c.op({ type: 'edit', path: '/m.js', edits: [{ oldText: 'main', newText: 'start' }, { oldText: '  return compute(1,2)\n}', newText: 'x' }] })
  const err = isError(t, res, 409, 'EDIT_NO_MATCH', { message: 'edit 1', details: { editIndex: 1 } })
  t.same(err.details?.closest, [{ line: 2, text: '    return compute(1, 2)' }], 'the line it most likely meant, as it is in the file')
  await untouched(t, c, '/m.js', created.revision, text)
  t.equal((await c.read('/m.js')).version, 1)

  await t.test('nothing alike: closest is empty', async t => {
    const res = await c.op({ type: 'edit', path: '/m.js', edits: [{ oldText: 'zzzzqqqq', newText: 'x' }] })
    t.same(isError(t, res, 409, 'EDIT_NO_MATCH').details, { editIndex: 0, closest: [] })
  })
})

t.test('more than one match → 409 EDIT_AMBIGUOUS with the count and lines; replaceAll replaces them all', async t => {
  const c = await setup(t)
  const text = 'x = 1\ny = 2\nx = 1\nz = 3\nx = 1\n'
  const created = await c.write('/v.py', text)
  const res = await c.op({ type: 'edit', path: '/v.py', edits: [{ oldText: 'x = 1', newText: 'x = 9' }] })
  isError(t, res, 409, 'EDIT_AMBIGUOUS', { details: { editIndex: 0, count: 3, lines: [1, 3, 5] } })
  await untouched(t, c, '/v.py', created.revision, text)

  await t.test('overlapping occurrences count', async t => {
    await c.write('/o.txt', 'aaa\n')
    const res = await c.op({ type: 'edit', path: '/o.txt', edits: [{ oldText: 'aa', newText: 'b' }] })
    isError(t, res, 409, 'EDIT_AMBIGUOUS', { details: { count: 2, lines: [1] } })
  })

  await t.test('replaceAll', async t => {
    const body = await edit(c, '/v.py', [{ oldText: 'x = 1', newText: 'x = 9', replaceAll: true }])
    t.equal((await c.read('/v.py')).content, 'x = 9\ny = 2\nx = 9\nz = 3\nx = 9\n')
    t.equal(body.diff, [
      'diff --git a/v.py b/v.py', '--- a/v.py', '+++ b/v.py', '@@ -1,5 +1,5 @@',
      '-x = 1', '+x = 9', ' y = 2', '-x = 1', '+x = 9', ' z = 3', '-x = 1', '+x = 9', ''
    ].join('\n'))
    const none = await c.op({ type: 'edit', path: '/v.py', edits: [{ oldText: 'x = 1', newText: 'x', replaceAll: true }] })
    isError(t, none, 409, 'EDIT_NO_MATCH', 'replaceAll still needs one occurrence')
  })
})

t.test('line endings: CRLF and LF match each other; the file keeps its own style', async t => {
  const c = await setup(t)
  await c.write('/crlf.txt', 'one\r\ntwo\r\nthree\r\n')
  const body = await edit(c, '/crlf.txt', [{ oldText: 'one\ntwo\n', newText: 'ONE\nTWO\nmore\n' }])
  t.equal((await c.read('/crlf.txt')).content, 'ONE\r\nTWO\r\nmore\r\nthree\r\n', 'LF oldText matched CRLF; newText written as CRLF')
  t.equal(body.diff, 'diff --git a/crlf.txt b/crlf.txt\n--- a/crlf.txt\n+++ b/crlf.txt\n@@ -1,3 +1,4 @@\n-one\r\n-two\r\n+ONE\r\n+TWO\r\n+more\r\n three\r\n', 'the diff keeps the CRs')

  await c.write('/lf.txt', 'one\ntwo\nthree\n')
  await edit(c, '/lf.txt', [{ oldText: 'two\r\nthree', newText: 'a\r\nb' }])
  t.equal((await c.read('/lf.txt')).content, 'one\na\nb\n', 'CRLF oldText matched LF; newText written as LF')

  await t.test('a mixed file keeps every byte outside the match', async t => {
    await c.write('/mixed.txt', 'a\r\nb\nc\r\nd\r\n')
    await edit(c, '/mixed.txt', [{ oldText: 'b\nc', newText: 'B\nC' }])
    t.equal((await c.read('/mixed.txt')).content, 'a\r\nB\r\nC\r\nd\r\n', 'mostly CRLF: the new text is CRLF')
  })

  await t.test('a file without a final newline keeps it so', async t => {
    await c.write('/nofinal.txt', 'x\r\ny')
    const body = await edit(c, '/nofinal.txt', [{ oldText: 'y', newText: 'z' }])
    t.equal((await c.read('/nofinal.txt')).content, 'x\r\nz')
    t.match(body.diff, /-y\n\\ No newline at end of file\n\+z\n\\ No newline at end of file\n$/)
  })
})

t.test('Unicode: emoji and combining characters are matched exactly, never normalised', async t => {
  const c = await setup(t)
  const text = 'smile 😀 here\ncafe\u0301 (NFD)\ncafé (NFC)\n👩‍👩‍👧 family\n'
  await c.write('/u.txt', text)
  await edit(c, '/u.txt', [{ oldText: '😀', newText: '🎉🎉' }, { oldText: '👩‍👩‍👧', newText: 'fam' }])
  t.equal((await c.read('/u.txt')).content, 'smile 🎉🎉 here\ncafe\u0301 (NFD)\ncafé (NFC)\nfam family\n')
  await edit(c, '/u.txt', [{ oldText: 'cafe\u0301', newText: 'nfd' }])
  await edit(c, '/u.txt', [{ oldText: 'café', newText: 'nfc' }])
  t.equal((await c.read('/u.txt')).content, 'smile 🎉🎉 here\nnfd (NFD)\nnfc (NFC)\nfam family\n', 'NFD and NFC are different texts')
  const before = await c.revision()
  isError(t, await c.op({ type: 'edit', path: '/u.txt', edits: [{ oldText: 'nfd (NFD)\nnfc (NFC)\u0301', newText: '' }] }), 409, 'EDIT_NO_MATCH')
  isError(t, await c.op({ type: 'edit', path: '/u.txt', edits: [{ oldText: 'x', newText: '\ud800' }] }), 400, 'VALIDATION_FAILED', 'a lone surrogate')
  await c.unchanged(t, before)
  const body = await edit(c, '/u.txt', [{ oldText: 'fam family', newText: 'ünï 🎉' }])
  t.equal(meta(body.data).size, Buffer.byteLength('smile 🎉🎉 here\nnfd (NFD)\nnfc (NFC)\nünï 🎉\n'), 'size counts UTF-8 bytes')
})

t.test('empty oldText sets the content of an empty file, and is refused on any other', async t => {
  const c = await setup(t)
  await c.op({ type: 'create', path: '/empty.txt' })
  const body = await edit(c, '/empty.txt', [{ oldText: '', newText: 'hello\n' }, { oldText: 'hello', newText: 'hi' }])
  t.equal((await c.read('/empty.txt')).content, 'hi\n')
  t.equal(body.diff, 'diff --git a/empty.txt b/empty.txt\n--- a/empty.txt\n+++ b/empty.txt\n@@ -0,0 +1,1 @@\n+hi\n')
  const before = await c.revision()
  isError(t, await c.op({ type: 'edit', path: '/empty.txt', edits: [{ oldText: '', newText: 'x' }] }), 400, 'VALIDATION_FAILED', { message: 'oldText is empty' })
  await untouched(t, c, '/empty.txt', before, 'hi\n')
  const cleared = await edit(c, '/empty.txt', [{ oldText: 'hi\n', newText: '' }, { oldText: '', newText: 'again' }])
  t.equal((await c.read('/empty.txt')).content, 'again', 'empty after an earlier edit of the same request')
  t.equal(meta(cleared.data).version, 3)
})

t.test('dry run: the diff and the would-be meta, nothing changed', async t => {
  const c = await setup(t)
  const created = await c.write('/d.txt', 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\n')
  const res = await c.op({ type: 'edit', path: '/d.txt', edits: [{ oldText: 'l5\n', newText: 'five\n' }], dryRun: true })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json<EditResult>()
  t.equal(body.dryRun, true)
  t.equal(body.revision, created.revision, 'the head, no revision taken')
  t.equal(body.diff, 'diff --git a/d.txt b/d.txt\n--- a/d.txt\n+++ b/d.txt\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+five\n l6\n l7\n l8\n')
  const would = 'l1\nl2\nl3\nl4\nfive\nl6\nl7\nl8\nl9\nl10\n'
  t.match(meta(body.data), { sha256: sha256(would), size: Buffer.byteLength(would), etag: created.file.etag, version: 1 }, 'new content fields; the current etag (to send as ifMatch) and version')
  await untouched(t, c, '/d.txt', created.revision, 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\n')
  t.same((await c.changes(created.revision)).changes, [], 'no change event')

  await t.test('the real edit then answers the same diff', async t => {
    const real = await edit(c, '/d.txt', [{ oldText: 'l5\n', newText: 'five\n' }], { ifMatch: meta(body.data).etag })
    t.equal(real.diff, body.diff)
    t.equal(meta(real.data).sha256, meta(body.data).sha256)
  })

  await t.test('a dry run that would fail fails the same way', async t => {
    const res = await c.op({ type: 'edit', path: '/d.txt', edits: [{ oldText: 'l5\n', newText: 'x' }], dryRun: true })
    isError(t, res, 409, 'EDIT_NO_MATCH')
  })
})

t.test('ifMatch: current → 200; stale → 412 and nothing changes', async t => {
  const c = await setup(t)
  const first = await c.write('/p.txt', 'v1\n')
  const ok = await edit(c, '/p.txt', [{ oldText: 'v1', newText: 'v2' }], { ifMatch: first.file.etag })
  const res = await c.op({ type: 'edit', path: '/p.txt', edits: [{ oldText: 'v2', newText: 'v3' }], ifMatch: first.file.etag })
  const err = isError(t, res, 412, 'PRECONDITION_FAILED')
  t.match(err.details, { current: { etag: meta(ok.data).etag, version: 2 } })
  await untouched(t, c, '/p.txt', ok.revision, 'v2\n')
  await edit(c, '/p.txt', [{ oldText: 'v2', newText: 'v3' }], { ifMatch: `"${meta(ok.data).etag}"` })
  t.equal((await c.read('/p.txt')).content, 'v3\n', 'a quoted etag works too')
})

t.test('refusals: binary, directory, missing file, bad shapes', async t => {
  const c = await setup(t)
  await c.write('/bin.dat', Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('base64'), { encoding: 'base64' })
  await c.write('/dir/f.txt', 'x')
  const before = await c.revision()
  isError(t, await c.op({ type: 'edit', path: '/bin.dat', edits: [{ oldText: 'A', newText: 'B' }] }), 415, 'NOT_TEXT')
  isError(t, await c.op({ type: 'edit', path: '/dir', edits: [{ oldText: 'A', newText: 'B' }] }), 400, 'IS_A_DIRECTORY')
  isError(t, await c.op({ type: 'edit', path: '/nope.txt', edits: [{ oldText: 'A', newText: 'B' }] }), 404, 'FILE_NOT_FOUND')
  isError(t, await c.op({ type: 'edit', path: '/', edits: [{ oldText: 'A', newText: 'B' }] }), 400, 'INVALID_PATH')
  isError(t, await c.op({ type: 'edit', path: '/dir/f.txt' }), 400, 'VALIDATION_FAILED', 'no edits')
  isError(t, await c.op({ type: 'edit', path: '/dir/f.txt', edits: [] }), 400, 'VALIDATION_FAILED', 'empty edits')
  isError(t, await c.op({ type: 'edit', path: '/dir/f.txt', edits: [{ oldText: 'x' }] }), 400, 'VALIDATION_FAILED', 'no newText')
  isError(t, await c.op({ type: 'edit', path: '/dir/f.txt', edits: [{ oldText: 'x', newText: 'y', extra: 1 }] }), 400, 'VALIDATION_FAILED', 'unknown property')
  isError(t, await c.op({ type: 'edit', path: '/dir/f.txt', edits: [{ oldText: 'x', newText: 'y' }], content: 'z' }), 400, 'VALIDATION_FAILED', 'content on an edit')
  isError(t, await c.op({ type: 'update', path: '/dir/f.txt', content: 'z', edits: [{ oldText: 'x', newText: 'y' }] }), 400, 'VALIDATION_FAILED', 'edits on an update')
  isError(t, await c.op({ type: 'update', path: '/dir/f.txt', content: 'z', dryRun: true }), 400, 'VALIDATION_FAILED', 'dryRun on an update')
  await c.unchanged(t, before)
})

t.test('access: a viewer cannot edit, not even a dry run; the session log shows edits and refusals', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a\n')
  const viewer = await registerUser(c.app)
  const added = await c.send('PUT', `/v1/workspaces/${c.ws}/members`, { email: viewer.email, role: 'viewer' })
  t.equal(added.statusCode, 200, added.body)
  const v = new FilesCtx(c.app, viewer, c.ws)
  const before = await c.revision()
  isError(t, await v.op({ type: 'edit', path: '/a.txt', edits: [{ oldText: 'a', newText: 'b' }] }), 403, 'FORBIDDEN')
  isError(t, await v.op({ type: 'edit', path: '/a.txt', edits: [{ oldText: 'a', newText: 'b' }], dryRun: true }), 403, 'FORBIDDEN')
  t.match((await v.get('/a.txt', '?lines=1-1')).json(), { content: 'a\n', totalLines: 1 }, 'a viewer reads lines')
  await untouched(t, c, '/a.txt', before, 'a\n')

  await edit(c, '/a.txt', [{ oldText: 'a', newText: 'b' }])
  isError(t, await c.op({ type: 'edit', path: '/a.txt', edits: [{ oldText: 'zz', newText: 'b' }] }), 409, 'EDIT_NO_MATCH')
  // A failure's entry is recorded on its own after the answer: wait for it.
  const failure = /### Error: EDIT\\?_NO\\?_MATCH: /
  let log = await c.getUrl(`/v1/sessions/${c.user.sessionId}/log.md`)
  for (let i = 0; i < 50 && !failure.test(log.body); i++) {
    await sleep(100)
    log = await c.getUrl(`/v1/sessions/${c.user.sessionId}/log.md`)
  }
  t.equal(log.statusCode, 200)
  t.match(log.body, /### Operation: edit\n/)
  t.match(log.body, failure)
})

t.test('a batch is atomic: an edit failing rolls the whole batch back', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a\n')
  await c.write('/b.txt', 'b\n')
  const before = await c.revision()
  const res = await c.batch([
    { type: 'edit', path: '/a.txt', edits: [{ oldText: 'a', newText: 'A' }] },
    { type: 'create', path: '/c.txt', content: 'c' },
    { type: 'edit', path: '/b.txt', edits: [{ oldText: 'nope', newText: 'B' }] }
  ])
  isError(t, res, 409, 'EDIT_NO_MATCH', { message: /^operation 2: edit 0/, details: { index: 2, code: 'EDIT_NO_MATCH', editIndex: 0 } })
  await untouched(t, c, '/a.txt', before, 'a\n')
  t.equal((await c.get('/c.txt')).statusCode, 404)

  await t.test('a batch of edits, each with its diff; a dry run inside it changes nothing', async t => {
    const res = await c.batch([
      { type: 'edit', path: '/a.txt', edits: [{ oldText: 'a', newText: 'A' }] },
      { type: 'edit', path: '/a.txt', edits: [{ oldText: 'A', newText: 'AA' }] },
      { type: 'edit', path: '/b.txt', edits: [{ oldText: 'b', newText: 'B' }], dryRun: true }
    ])
    t.equal(res.statusCode, 200, res.body)
    const body = res.json<BatchResult>()
    t.equal(body.revision, before + 2)
    t.match(body.results, [
      { revision: before + 1, diff: /-a\n\+A\n$/ },
      { revision: before + 2, diff: /-A\n\+AA\n$/ },
      { revision: before + 2, diff: /-b\n\+B\n$/, dryRun: true }
    ])
    t.equal((await c.read('/a.txt')).content, 'AA\n')
    t.equal((await c.read('/b.txt')).content, 'b\n')
  })
})

t.test('idempotent: the same Idempotency-Key replays the first answer and applies nothing again', async t => {
  const c = await setup(t)
  await c.write('/i.txt', 'count: 1\n')
  const op = { type: 'edit', path: '/i.txt', edits: [{ oldText: 'count: 1', newText: 'count: 2' }] }
  const first = await c.op(op, { 'idempotency-key': 'edit-1' })
  t.equal(first.statusCode, 200, first.body)
  const again = await c.op(op, { 'idempotency-key': 'edit-1' })
  t.equal(again.statusCode, 200)
  t.same(again.json(), first.json(), 'the same answer')
  t.equal((await c.read('/i.txt')).content, 'count: 2\n')
  t.equal(await c.revision(), first.json<EditResult>().revision)
})

t.test('a 10 MiB file (MAX_FILE_BYTES) can be edited; a result over it is 413', async t => {
  const c = await setup(t)
  const max = 10 * 1024 * 1024
  const line = 'x'.repeat(99) + '\n'
  const lines = Array.from({ length: Math.floor(max / 100) }, (_, i) => i === 50_000 ? 'the middle line ' + 'y'.repeat(83) + '\n' : line)
  const text = lines.join('') + 'z'.repeat(max % 100 - 1) + '\n'
  t.equal(Buffer.byteLength(text), max)
  await c.write('/big.txt', text)
  const started = Date.now()
  const body = await edit(c, '/big.txt', [{ oldText: 'the middle line', newText: 'THE MIDDLE LINE' }])
  t.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`)
  t.equal(meta(body.data).size, max)
  t.match(body.diff, /^diff --git a\/big\.txt b\/big\.txt\n--- a\/big\.txt\n\+\+\+ b\/big\.txt\n@@ -49998,7 \+49998,7 @@\n/)
  t.equal(body.diff.split('\n').length, 4 + 8 + 1)
  const got = await c.read('/big.txt')
  t.equal(got.content.slice(50_000 * 100, 50_000 * 100 + 15), 'THE MIDDLE LINE')
  const before = await c.revision()
  const res = await c.op({ type: 'edit', path: '/big.txt', edits: [{ oldText: 'THE MIDDLE LINE', newText: 'THE MIDDLE LINE!' }] })
  isError(t, res, 413, 'FILE_TOO_LARGE')
  await c.unchanged(t, before)
})

t.test('over WebSocket RPC: operations.apply edits, subscribers get the change, files.read takes lines', async t => {
  const c = await setup(t)
  const base = await listen(c.app)
  await c.write('/w.txt', 'one\ntwo\nthree\n')
  const client = await connect(t, base, { token: c.user.token })
  const head = await client.join(c.ws)
  const reply = await client.rpc('operations.apply', { workspaceId: c.ws, type: 'edit', path: '/w.txt', edits: [{ oldText: 'two', newText: '2' }], idempotencyKey: 'rpc-edit' })
  t.equal(reply.type, 'rpc.result', JSON.stringify(reply))
  const result = reply.result as EditResult
  t.equal(result.revision, head + 1)
  t.equal(result.diff, 'diff --git a/w.txt b/w.txt\n--- a/w.txt\n+++ b/w.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n')
  const event = await client.next(m => m.type === 'event' && m.revision === head + 1, 'the edit event')
  t.match(event, { event: 'file.changed', data: { op: 'update', path: '/w.txt', opId: 'rpc-edit' } })
  const read = await client.rpc('files.read', { workspaceId: c.ws, path: '/w.txt', lines: '2-3' })
  t.match(read.result, { content: '2\nthree\n', lines: { start: 2, end: 3 }, totalLines: 3 })
  const failed = await client.rpc('operations.apply', { workspaceId: c.ws, type: 'edit', path: '/w.txt', edits: [{ oldText: 'zzz', newText: '' }] })
  t.match(failed, { type: 'rpc.error', error: { code: 'EDIT_NO_MATCH', details: { editIndex: 0 } } })
  const badLines = await client.rpc('files.read', { workspaceId: c.ws, path: '/w.txt', lines: 'x' })
  t.match(badLines, { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } })
  t.equal((await c.read('/w.txt')).content, 'one\n2\nthree\n')
  const batch = await client.rpc('operations.batch', {
    workspaceId: c.ws,
    operations: [
      { type: 'edit', path: '/w.txt', edits: [{ oldText: 'one', newText: '1' }] },
      { type: 'edit', path: '/w.txt', edits: [{ oldText: 'three', newText: '3' }], dryRun: true }
    ]
  })
  t.match(batch, { type: 'rpc.result', result: { revision: head + 2, results: [{ revision: head + 2, diff: /-one\n\+1\n/ }, { dryRun: true, diff: /-three\n\+3\n/ }] } })
  t.match(await client.rpc('files.read', { workspaceId: c.ws, path: '/w.txt', lines: '-2', revision: head + 1 }), { result: { content: '2\nthree\n', lines: { start: 2, end: 3 } } }, 'lines at a revision')
  const e = failed.error as ErrorReply
  t.ok(e.message.includes('edit 0'))
})
