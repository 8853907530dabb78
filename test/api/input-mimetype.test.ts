import t, { type Test } from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser } from '../helpers/app.js'
import { isError, type Res } from '../helpers/http.js'
import { Ctx, setup } from '../helpers/files.js'

/**
 * A stored mimeType becomes a raw read's Content-Type (the "Hardening" issue, finding 13): it must
 * be a media type (RFC 9110, token characters only) when written, and a raw read of anything a
 * browser could run as a document or script is a sandboxed download, never inline.
 */

const BAD_TYPES = [
  'text/plain; x=☃',
  'text/html\r\nx-injected: 1',
  'text/html\nx: 1',
  'text',
  'text/',
  '/plain',
  'text/plain;',
  'text/plain; x',
  'text/plain; charset="utf-8"',
  'tëxt/plain',
  ' text/plain',
  'text/plain ',
  'text/pl ain',
  'text/plain, text/html'
]

t.test('a mimeType that is not a media type is 400 on every write, and nothing changes', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const before = await c.revision()
  for (const mimeType of BAD_TYPES) {
    const label = JSON.stringify(mimeType)
    isError(t, await c.put('/b.txt', { content: 'x', mimeType }), 400, 'VALIDATION_FAILED', `PUT ${label}`)
    isError(t, await c.op({ type: 'create', path: '/b.txt', mimeType }), 400, 'VALIDATION_FAILED', `create ${label}`)
    isError(t, await c.op({ type: 'update', path: '/a.txt', mimeType }), 400, 'VALIDATION_FAILED', `update ${label}`)
    isError(t, await c.batch([{ type: 'mkdir', path: '/d' }, { type: 'update', path: '/a.txt', mimeType }]), 400, 'VALIDATION_FAILED', `batch ${label}`)
  }
  await c.unchanged(t, before)
  t.equal((await c.read('/a.txt')).mimeType, 'text/plain', 'the mimeType is as it was')
})

t.test('media types with parameters are kept as written and served as the Content-Type', async t => {
  const c = await setup(t)
  for (const mimeType of ['text/plain; charset=utf-8', 'text/plain;charset=UTF-8;format=flowed', 'application/vnd.api+json', 'text/x-c++', 'Text/Plain']) {
    const w = await c.write('/f', 'x', { mimeType })
    t.equal(w.file.mimeType, mimeType)
    const raw = await c.get('/f', '?format=raw')
    t.equal(raw.statusCode, 200, raw.body)
    t.equal(raw.headers['content-type'], mimeType, `Content-Type ${mimeType}`)
  }
})

/** The headers that make a raw read safe to open in a browser. */
function expectSandboxed (t: Test, res: Res, label: string, download: boolean): void {
  t.equal(res.statusCode, 200, `${label}: ${res.body.slice(0, 200)}`)
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${label}: nosniff`)
  t.equal(res.headers['content-security-policy'], 'sandbox', `${label}: CSP sandbox`)
  const disposition = res.headers['content-disposition']
  if (download) t.match(disposition, /^attachment(;|$)/, `${label}: attachment`)
  else t.equal(disposition, undefined, `${label}: inline`)
}

t.test('raw reads: active types are sandboxed downloads, known-safe types inline', async t => {
  const c = await setup(t)
  const active: Array<[string, string | undefined]> = [
    ['/page.html', undefined],
    ['/page.htm', 'text/html; charset=utf-8'],
    ['/x.xhtml', 'application/xhtml+xml'],
    ['/img.svg', undefined],
    ['/feed.xml', 'application/xml'],
    ['/t.xml', 'text/xml'],
    ['/app.js', undefined],
    ['/app.mjs', 'application/javascript'],
    ['/doc.pdf', 'application/pdf'],
    ['/blob', 'application/octet-stream'],
    ['/odd', 'application/x-something-new'],
    ['/case', 'TEXT/HTML']
  ]
  for (const [path, mimeType] of active) {
    await c.write(path, '<script>alert(1)</script>', mimeType === undefined ? {} : { mimeType })
    expectSandboxed(t, await c.get(path, '?format=raw'), `${path} ${mimeType ?? '(guessed)'}`, true)
  }
  const safe: Array<[string, string | undefined]> = [
    ['/notes.txt', undefined],
    ['/readme.md', undefined],
    ['/data.json', undefined],
    ['/rows.csv', 'text/csv'],
    ['/p.png', 'image/png'],
    ['/plain', 'text/plain; charset=utf-8']
  ]
  for (const [path, mimeType] of safe) {
    await c.write(path, 'x', mimeType === undefined ? {} : { mimeType })
    expectSandboxed(t, await c.get(path, '?format=raw'), `${path} ${mimeType ?? '(guessed)'}`, false)
  }
  // A download is named after the file, percent-encoded (RFC 8187), whatever characters it has.
  await c.write('/dir/naïve "x"; y\'s (1).html', 'x')
  const named = await c.get('/dir/naïve "x"; y\'s (1).html', '?format=raw')
  t.equal(named.headers['content-disposition'], "attachment; filename*=UTF-8''na%C3%AFve%20%22x%22%3B%20y%27s%20%281%29.html")
  // The JSON read is unchanged: the content travels inside JSON, never as the document.
  t.equal((await c.get('/page.html')).headers['content-disposition'], undefined)
})

t.test('a stored mimeType from before the check is served as a sandboxed octet-stream, not a 500', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  await c.write('/snow.txt', 'x')
  const db = await dbClient(t, url)
  await db.query('UPDATE files SET mime_type = $1 WHERE path = $2', ['text/plain; x=☃', '/snow.txt'])
  // A second instance on the same database: its read cache has not seen the file yet.
  const fresh = new Ctx(await build(t, { DATABASE_URL: url }), user, c.ws)
  const raw = await fresh.get('/snow.txt', '?format=raw')
  expectSandboxed(t, raw, 'stored "text/plain; x=☃"', true)
  t.equal(raw.headers['content-type'], 'application/octet-stream')
  t.equal(raw.body, 'x')
  t.equal((await fresh.read('/snow.txt')).mimeType, 'text/plain; x=☃', 'the JSON read shows what is stored')
})
