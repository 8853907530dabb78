import t from 'tap'
import { build, registerUser } from '../helpers/app.js'

t.test('CORS: only the allow-listed origins, with the headers a browser IDE needs', async t => {
  const app = await build(t, { CORS_ORIGINS: 'https://ide.example, https://staging.ide.example' })
  const user = await registerUser(app)

  const allowed = await app.inject({ url: '/v1/me', headers: { ...user.auth, origin: 'https://ide.example' } })
  t.equal(allowed.statusCode, 200)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://ide.example')
  t.match(String(allowed.headers['access-control-expose-headers']), /etag/, 'ETag is readable from the browser')
  t.match(String(allowed.headers.vary), /Origin/)

  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/v1/workspaces/00000000-0000-4000-8000-000000000000/files/a.ts',
    headers: { origin: 'https://staging.ide.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization, content-type, if-match, idempotency-key, x-session-id' }
  })
  t.equal(preflight.statusCode, 204, 'preflight answered without a token')
  t.equal(preflight.headers['access-control-allow-origin'], 'https://staging.ide.example')
  t.match(String(preflight.headers['access-control-allow-methods']), /PUT/)
  for (const h of ['authorization', 'if-match', 'idempotency-key', 'x-session-id']) {
    t.match(String(preflight.headers['access-control-allow-headers']).toLowerCase(), h, `${h} may be sent`)
  }

  const other = await app.inject({ url: '/v1/me', headers: { ...user.auth, origin: 'https://evil.example' } })
  t.equal(other.headers['access-control-allow-origin'], undefined, 'another origin gets no CORS grant')
})

t.test('no CORS_ORIGINS: no origin is granted', async t => {
  const app = await build(t)
  const res = await app.inject({ url: '/health', headers: { origin: 'https://ide.example' } })
  t.equal(res.headers['access-control-allow-origin'], undefined)
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/v1/me',
    headers: { origin: 'https://ide.example', 'access-control-request-method': 'GET' }
  })
  t.equal(preflight.headers['access-control-allow-origin'], undefined, 'no preflight grant')
  t.equal(preflight.headers['access-control-allow-methods'], undefined)
})

t.test('security headers on every answer, errors included', async t => {
  const app = await build(t)
  for (const url of ['/health', '/v1/me', '/nope']) {
    const res = await app.inject({ url })
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${url}: nosniff`)
    t.ok(res.headers['strict-transport-security'] !== undefined, `${url}: HSTS`)
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', `${url}: framing limited`)
    t.equal(res.headers['x-powered-by'], undefined, `${url}: no x-powered-by`)
  }
})
