import t from 'tap'
import { isError, type Entry, type FileBody } from '../helpers/http.js'
import { setup, sha256, type Ctx } from '../helpers/files.js'

/** Ranged reads, `GET …/files/{path}?lines=`: docs/api.md "Ranged reads". */

type Ranged = FileBody & Required<Pick<Entry, 'lines' | 'totalLines'>>

async function lines (c: Ctx, path: string, spec: string, extra = ''): Promise<Ranged> {
  const res = await c.get(path, `?lines=${encodeURIComponent(spec)}${extra}`)
  if (res.statusCode !== 200) throw new Error(`lines ${spec}: ${res.statusCode} ${res.body}`)
  return res.json<Ranged>()
}

const FIVE = 'one\ntwo\nthree\nfour\nfive\n'

t.test('A-B, A- and -N return those lines, the range and totalLines, with the whole file\'s meta', async t => {
  const c = await setup(t)
  const written = await c.write('/f.txt', FIVE)
  const body = await lines(c, '/f.txt', '2-4')
  t.match(body, {
    path: '/f.txt',
    kind: 'file',
    etag: written.file.etag,
    size: Buffer.byteLength(FIVE),
    sha256: sha256(FIVE),
    content: 'two\nthree\nfour\n',
    encoding: 'utf8',
    lines: { start: 2, end: 4 },
    totalLines: 5
  })
  t.match(await lines(c, '/f.txt', '4-'), { content: 'four\nfive\n', lines: { start: 4, end: 5 }, totalLines: 5 })
  t.match(await lines(c, '/f.txt', '-2'), { content: 'four\nfive\n', lines: { start: 4, end: 5 }, totalLines: 5 })
  t.match(await lines(c, '/f.txt', '3-3'), { content: 'three\n', lines: { start: 3, end: 3 } })

  const res = await c.get('/f.txt', '?lines=1-2')
  t.equal(res.headers.etag, `"${written.file.etag}"`, 'the file\'s ETag')
  t.equal(res.headers['x-revision'], String(written.revision))
  t.notOk('lines' in (await c.read('/f.txt')), 'a plain read has no lines or totalLines')
})

t.test('the bounds', async t => {
  const c = await setup(t)
  await c.write('/f.txt', FIVE)
  t.match(await lines(c, '/f.txt', '1-5'), { content: FIVE, lines: { start: 1, end: 5 }, totalLines: 5 }, 'A=1, B=totalLines: the whole file')
  t.match(await lines(c, '/f.txt', '1-1'), { content: 'one\n', lines: { start: 1, end: 1 } }, 'the first line')
  t.match(await lines(c, '/f.txt', '5-5'), { content: 'five\n', lines: { start: 5, end: 5 } }, 'the last line')
  t.match(await lines(c, '/f.txt', '4-99'), { content: 'four\nfive\n', lines: { start: 4, end: 5 }, totalLines: 5 }, 'B past the end: to the end')
  t.match(await lines(c, '/f.txt', '6-9'), { content: '', lines: { start: 6, end: 5 }, totalLines: 5 }, 'A past the end: no lines, end = start - 1')
  t.match(await lines(c, '/f.txt', '600-'), { content: '', lines: { start: 600, end: 599 }, totalLines: 5 })
  t.match(await lines(c, '/f.txt', '-5'), { content: FIVE, lines: { start: 1, end: 5 } }, '-N = totalLines')
  t.match(await lines(c, '/f.txt', '-1000'), { content: FIVE, lines: { start: 1, end: 5 } }, '-N bigger than the file: all of it')
  t.match(await lines(c, '/f.txt', '-1'), { content: 'five\n', lines: { start: 5, end: 5 } })
  t.match(await lines(c, '/f.txt', '999999999999999-'), { content: '', totalLines: 5 }, 'a huge A')

  for (const bad of ['0', '0-3', '0-', '-0', '3-2', '', 'x', '1-x', '1--2', '1-2-3', ' 1-2', '1,2', '1.5-2', '+1-2', '1-2 ', '5', '1234567890123456-']) {
    const res = await c.get('/f.txt', `?lines=${encodeURIComponent(bad)}`)
    isError(t, res, 400, 'VALIDATION_FAILED', `lines=${JSON.stringify(bad)}`)
  }
})

t.test('what a line is: LF ends it, CRLF is kept, a last line without LF counts, "" has none', async t => {
  const c = await setup(t)
  await c.write('/crlf.txt', 'a\r\nb\r\nc\r\n')
  t.match(await lines(c, '/crlf.txt', '2-'), { content: 'b\r\nc\r\n', lines: { start: 2, end: 3 }, totalLines: 3 })
  await c.write('/nofinal.txt', 'a\nb\nc')
  t.match(await lines(c, '/nofinal.txt', '-1'), { content: 'c', lines: { start: 3, end: 3 }, totalLines: 3 })
  await c.write('/blank.txt', '\n\n')
  t.match(await lines(c, '/blank.txt', '2-2'), { content: '\n', totalLines: 2 })
  await c.op({ type: 'create', path: '/empty.txt' })
  t.match(await lines(c, '/empty.txt', '1-'), { content: '', lines: { start: 1, end: 0 }, totalLines: 0 })
  t.match(await lines(c, '/empty.txt', '-3'), { content: '', lines: { start: 1, end: 0 }, totalLines: 0 })
  await c.write('/u.txt', '😀\ncafe\u0301\n👩‍👩‍👧\n')
  t.match(await lines(c, '/u.txt', '2-3'), { content: 'cafe\u0301\n👩‍👩‍👧\n', totalLines: 3 }, 'Unicode untouched')

  await t.test('consecutive ranges concatenate to the file', async t => {
    const text = 'x\r\ny\n\nz\r\nlast'
    await c.write('/cat.txt', text)
    const parts = [await lines(c, '/cat.txt', '1-2'), await lines(c, '/cat.txt', '3-4'), await lines(c, '/cat.txt', '5-')]
    t.equal(parts.map(p => p.content).join(''), text)
  })
})

t.test('at ?revision=: the lines as they were', async t => {
  const c = await setup(t)
  const first = await c.write('/r.txt', 'old 1\nold 2\nold 3\n')
  await c.write('/r.txt', 'new 1\n')
  t.match(await lines(c, '/r.txt', '2-3', `&revision=${first.revision}`), { content: 'old 2\nold 3\n', lines: { start: 2, end: 3 }, totalLines: 3 })
  t.match(await lines(c, '/r.txt', '-1'), { content: 'new 1\n', totalLines: 1 })
  isError(t, await c.get('/r.txt', `?lines=0-1&revision=${first.revision}`), 400, 'VALIDATION_FAILED')
})

t.test('refusals: binary → 415 NOT_TEXT, a directory → 400, missing → 404', async t => {
  const c = await setup(t)
  await c.write('/bin.dat', Buffer.from([0xff, 0x00, 0x0a, 0x41]).toString('base64'), { encoding: 'base64' })
  await c.write('/dir/a.txt', 'a')
  isError(t, await c.get('/bin.dat', '?lines=1-2'), 415, 'NOT_TEXT')
  isError(t, await c.get('/dir', '?lines=1-2'), 400, 'IS_A_DIRECTORY')
  isError(t, await c.get('/', '?lines=1-2'), 400, 'IS_A_DIRECTORY')
  isError(t, await c.get('/missing.txt', '?lines=1-2'), 404, 'FILE_NOT_FOUND')
})

t.test('format=raw: only those lines\' bytes, the range in X-Lines and X-Total-Lines', async t => {
  const c = await setup(t)
  await c.write('/f.txt', FIVE)
  const res = await c.get('/f.txt', '?lines=2-3&format=raw')
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'two\nthree\n')
  t.equal(res.headers['x-lines'], '2-3')
  t.equal(res.headers['x-total-lines'], '5')
  t.match(res.headers['content-type'], /^text\/plain/)
})
