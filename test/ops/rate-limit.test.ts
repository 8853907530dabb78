import { randomBytes } from 'node:crypto'
import net from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, createTestDatabase, listen, REDIS_URL, registerUser, sleep } from '../helpers/app.js'
import { connect } from '../helpers/ws.js'

/** A unique Redis key prefix per run, so parallel runs (and files) never share counters. */
const prefix = (): string => `wb:test:${randomBytes(6).toString('hex')}:`
function assertLimited (t: Test, res: LightMyRequestResponse, limit: number): void {
  t.equal(res.statusCode, 429, res.body)
  t.match(res.json(), { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: String, details: { limit } })
  t.equal(res.headers['x-ratelimit-limit'], String(limit))
  t.equal(res.headers['x-ratelimit-remaining'], '0')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${String(res.headers['retry-after'])}`)
  t.equal(res.headers['x-ratelimit-reset'], res.headers['retry-after'])
}

t.test('the 101st request in a window is 429, counted across two instances sharing Redis', async t => {
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_URL, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_KEY_PREFIX: prefix() }
  const a = await build(t, env)
  const b = await build(t, env)
  const user = await registerUser(a)
  const other = await registerUser(b)

  for (let i = 1; i <= 100; i++) {
    const res = await (i % 2 === 0 ? a : b).inject({ url: '/v1/workspaces', headers: user.auth })
    if (res.statusCode !== 200 || res.headers['x-ratelimit-remaining'] !== String(100 - i)) {
      t.fail(`request ${i}: ${res.statusCode} remaining ${String(res.headers['x-ratelimit-remaining'])}`)
      return
    }
    t.equal(res.headers['x-ratelimit-limit'], '100')
  }
  const refused = await a.inject({ url: '/v1/workspaces', headers: user.auth })
  assertLimited(t, refused, 100)
  assertLimited(t, await b.inject({ url: '/v1/me', headers: user.auth }), 100)

  // Another user has a budget of their own; operations routes are never limited.
  const fine = await a.inject({ url: '/v1/workspaces', headers: other.auth })
  t.equal(fine.statusCode, 200)
  t.equal(fine.headers['x-ratelimit-remaining'], '99')
  for (const url of ['/health', '/ready', '/metrics']) {
    const res = await a.inject({ url })
    t.equal(res.statusCode, 200, url)
    t.notOk('x-ratelimit-limit' in res.headers, `${url} carries no rate-limit headers`)
  }

  const metrics = (await a.inject({ url: '/metrics' })).body
  t.match(metrics, /^workbench_rate_limited_total\{limit="api"\} 1$/m, 'the refusal on this instance counted')
})

t.test('the window resets', async t => {
  const app = await build(t, { REDIS_URL, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_KEY_PREFIX: prefix(), RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '1000' })
  const user = await registerUser(app)
  t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200)
  const refused = await app.inject({ url: '/v1/me', headers: user.auth })
  assertLimited(t, refused, 2)
  await sleep(Number(refused.headers['retry-after']) * 1000 + 100)
  t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200, 'allowed again in the next window')
})

t.test('login and register share a stricter limit per client address', async t => {
  const app = await build(t, { REDIS_URL, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_KEY_PREFIX: prefix(), AUTH_RATE_LIMIT_MAX: '3' })
  const ip = '203.0.113.7'
  const email = `limit-${randomBytes(4).toString('hex')}@example.com`
  const password = 'correct horse battery'
  const register = await app.inject({ method: 'POST', url: '/v1/auth/register', remoteAddress: ip, payload: { email, password } })
  t.equal(register.statusCode, 201)
  t.equal(register.headers['x-ratelimit-limit'], '3')
  t.equal(register.headers['x-ratelimit-remaining'], '2')
  for (let i = 0; i < 2; i++) {
    const wrong = await app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: ip, payload: { email, password: 'wrong password!' } })
    t.equal(wrong.statusCode, 401)
  }
  // The right password does not help once the address is over its limit.
  const refused = await app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: ip, payload: { email, password } })
  assertLimited(t, refused, 3)
  t.match(refused.json(), { details: { windowMs: 60_000 } })
  const elsewhere = await app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: '203.0.113.8', payload: { email, password } })
  t.equal(elsewhere.statusCode, 200, 'another address is not affected')
  // X-Forwarded-For is ignored unless TRUST_PROXY says so.
  const spoofed = await app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: ip, headers: { 'x-forwarded-for': '198.51.100.1' }, payload: { email, password } })
  t.equal(spoofed.statusCode, 429)
  t.match((await app.inject({ url: '/metrics' })).body, /^workbench_rate_limited_total\{limit="auth"\} 2$/m)
})

t.test('TRUST_PROXY: the address comes from X-Forwarded-For sent by a trusted proxy', async t => {
  const app = await build(t, { REDIS_URL, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_KEY_PREFIX: prefix(), AUTH_RATE_LIMIT_MAX: '1', TRUST_PROXY: '10.0.0.1' })
  const login = async (remoteAddress: string, forwardedFor: string): Promise<number> => (await app.inject({
    method: 'POST', url: '/v1/auth/login', remoteAddress, headers: { 'x-forwarded-for': forwardedFor }, payload: { email: 'nobody@example.com', password: 'whatever123' }
  })).statusCode
  t.equal(await login('10.0.0.1', '198.51.100.1'), 401)
  t.equal(await login('10.0.0.1', '198.51.100.2'), 401, 'a different client behind the proxy has its own budget')
  t.equal(await login('10.0.0.1', '198.51.100.1'), 429, 'the first client is limited')
  t.equal(await login('10.0.0.9', '198.51.100.3'), 401, 'an untrusted peer is keyed by its own address')
  t.equal(await login('10.0.0.9', '198.51.100.4'), 429, 'and its X-Forwarded-For is ignored')
})

t.test('without Redis the counts are kept in process', async t => {
  const app = await build(t, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: '3' })
  const user = await registerUser(app)
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200)
  assertLimited(t, await app.inject({ url: '/v1/me', headers: user.auth }), 3)
})

/** A TCP proxy in front of Redis that the test can cut and restore: a real outage, seen by the app. */
async function redisProxy (t: Test): Promise<{ url: string, cut: () => Promise<void>, restore: () => Promise<void> }> {
  const target = new URL(REDIS_URL)
  const sockets = new Set<net.Socket>()
  const server = net.createServer(client => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {}).on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const cut = async (): Promise<void> => {
    const closed = new Promise<void>(resolve => server.close(() => { resolve() }))
    for (const s of sockets) s.destroy()
    await closed
  }
  const restore = async (): Promise<void> => { await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve)) }
  t.teardown(async () => { if (server.listening) await cut() })
  return { url: `redis://127.0.0.1:${port}`, cut, restore }
}

t.test('Redis down: requests are let through at once (fail open), and limits resume when it returns', async t => {
  const proxy = await redisProxy(t)
  const app = await build(t, { REDIS_URL: proxy.url, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_KEY_PREFIX: prefix(), RATE_LIMIT_MAX: '3' })
  const user = await registerUser(app)
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 429, 'limited through the proxy')

  await proxy.cut()
  await sleep(100)
  const started = Date.now()
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ url: '/v1/me', headers: user.auth })
    t.equal(res.statusCode, 200, 'served while Redis is down')
    // @fastify/rate-limit still sends its headers for an unchecked request: the full budget, reset 0.
    t.equal(res.headers['x-ratelimit-reset'], '0', 'unchecked request')
  }
  t.ok(Date.now() - started < 2_000, `five requests in ${Date.now() - started} ms: no waiting for Redis`)
  t.match((await app.inject({ url: '/metrics' })).body, /^workbench_rate_limit_store_errors_total [1-9]\d*$/m)

  await proxy.restore()
  let status = 0
  for (let i = 0; i < 100 && status !== 429; i++) {
    await sleep(100)
    status = (await app.inject({ url: '/v1/me', headers: user.auth })).statusCode
  }
  t.equal(status, 429, 'limited again once Redis is back (the window kept its count)')
  await waitForRedis(app)
})

t.test('Redis down with RATE_LIMIT_FAIL_OPEN=false: 503 UNAVAILABLE', async t => {
  const proxy = await redisProxy(t)
  const app: FastifyInstance = await build(t, { REDIS_URL: proxy.url, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_KEY_PREFIX: prefix(), RATE_LIMIT_FAIL_OPEN: 'false' })
  const user = await registerUser(app)
  t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200)
  await proxy.cut()
  await sleep(100)
  const res = await app.inject({ url: '/v1/me', headers: user.auth })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { statusCode: 503, code: 'UNAVAILABLE' })
  t.ok(Number(res.headers['retry-after']) > 0)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, '/health is not limited')
  await proxy.restore()
  let status = 0
  for (let i = 0; i < 100 && status !== 200; i++) {
    await sleep(100)
    status = (await app.inject({ url: '/v1/me', headers: user.auth })).statusCode
  }
  t.equal(status, 200, 'served again once Redis is back')
  await waitForRedis(app)
})

/** Lets the app's own Redis connections reconnect, so that closing it can quit them cleanly. */
async function waitForRedis (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 100 && (app.redis.cmd?.status !== 'ready' || app.redis.sub?.status !== 'ready'); i++) await sleep(50)
}

t.test('the WebSocket upgrade is not counted: an open socket is limited per message instead', async t => {
  const app = await build(t, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: '2' })
  const base = await listen(app)
  const user = await registerUser(app)
  for (let i = 0; i < 5; i++) {
    const client = await connect(t, base, { token: user.token })
    t.equal(client.messages[0]?.type, 'connected', `socket ${i + 1} connects past RATE_LIMIT_MAX`)
    client.close()
  }
})
