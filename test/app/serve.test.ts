import t from 'tap'
import { gunzipSync, brotliDecompressSync } from 'node:zlib'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { APP_CSP, APP_DIR } from '../../routes/app/index.js'
import { build } from '../helpers/app.js'
import { ensureIdePage } from '../helpers/browser.js'

/**
 * /app/ over HTTP: the page and its hashed assets, their content types, cache headers,
 * compression, revalidation and the page's CSP; SERVE_APP=false turns it off (404).
 */

t.test('the IDE page and its assets', async t => {
  await ensureIdePage()
  const app = await build(t)
  const page = await app.inject({ method: 'GET', url: '/app/' })
  t.equal(page.statusCode, 200)
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(page.headers['cache-control'], 'no-cache', 'the page is revalidated every time')
  t.equal(page.headers['content-security-policy'], APP_CSP)
  t.match(APP_CSP, /script-src 'self'(;|$)/, 'scripts from this origin only')
  t.match(APP_CSP, /connect-src 'self' ws: wss:/, 'the API and its WebSocket')
  t.equal(page.headers['x-content-type-options'], 'nosniff', 'the API\'s security headers too')
  t.equal(page.body, await readFile(join(APP_DIR, 'index.html'), 'utf8'))
  const etag = page.headers.etag
  t.type(etag, 'string')

  const again = await app.inject({ method: 'GET', url: '/app/', headers: { 'if-none-match': String(etag) } })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '')
  t.equal((await app.inject({ method: 'GET', url: '/app/', headers: { 'if-none-match': '"other"' } })).statusCode, 200)

  const redirect = await app.inject({ method: 'GET', url: '/app?x=1' })
  t.equal(redirect.statusCode, 301)
  t.equal(redirect.headers.location, '/app/?x=1')

  const script = /src="\.\/(assets\/main-[A-Z0-9]+\.js)"/.exec(page.body)?.[1]
  const style = /href="\.\/(assets\/main-[A-Z0-9]+\.css)"/.exec(page.body)?.[1]
  if (script === undefined || style === undefined) throw new Error('the page names no script or style')
  const js = await app.inject({ method: 'GET', url: `/app/${script}` })
  t.equal(js.statusCode, 200)
  t.equal(js.headers['content-type'], 'text/javascript; charset=utf-8')
  t.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable', 'hashed names never change')
  t.equal(js.headers['content-encoding'], undefined, 'not compressed unless asked')
  const bytes = await readFile(join(APP_DIR, script))
  t.ok(js.rawPayload.equals(bytes))
  const br = await app.inject({ method: 'GET', url: `/app/${script}`, headers: { 'accept-encoding': 'gzip, deflate, br' } })
  t.equal(br.headers['content-encoding'], 'br')
  t.equal(br.headers.vary, 'accept-encoding')
  t.ok(brotliDecompressSync(br.rawPayload).equals(bytes), 'brotli')
  t.ok(br.rawPayload.length < bytes.length / 2)
  const gz = await app.inject({ method: 'GET', url: `/app/${script}`, headers: { 'accept-encoding': 'gzip' } })
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.ok(gunzipSync(gz.rawPayload).equals(bytes), 'gzip')
  const css = await app.inject({ method: 'GET', url: `/app/${style}` })
  t.equal(css.headers['content-type'], 'text/css; charset=utf-8')

  const head = await app.inject({ method: 'HEAD', url: '/app/' })
  t.equal(head.statusCode, 200)

  for (const url of ['/app/assets/nope.js', '/app/index.html.br', '/app/../package.json', '/app/src/main.ts']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'NOT_FOUND', url)
  }
  t.equal((await app.inject({ method: 'POST', url: '/app/' })).statusCode, 404, 'only GET and HEAD')

  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, unknown> }>()
  t.same(Object.keys(doc.paths).filter(p => p.startsWith('/app')), [], 'not part of the API document')
})

t.test('SERVE_APP=false: /app/ is 404 like any unknown route', async t => {
  const app = await build(t, { SERVE_APP: 'false' })
  for (const url of ['/app/', '/app', '/app/index.html']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'NOT_FOUND')
  }
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the API is unchanged')
})
