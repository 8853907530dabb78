import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, registerUser } from '../helpers/app.js'
import { runAdminCommand } from '../../src/accounts/admin.js'

t.test('GET /v1/stats: admins only, with the summary the operators need', async t => {
  const adminEmail = `admin-${randomBytes(4).toString('hex')}@example.com`
  const app = await build(t)
  const admin = await registerUser(app, adminEmail)
  const user = await registerUser(app)
  // What `npm run admin -- grant <email>` does (test/api/sessions-admin.test.ts runs the real command).
  t.equal((await runAdminCommand(app.db, ['grant', adminEmail])).code, 0)

  t.equal((await app.inject({ url: '/v1/stats' })).statusCode, 401)
  const forbidden = await app.inject({ url: '/v1/stats', headers: user.auth })
  t.equal(forbidden.statusCode, 403)
  t.match(forbidden.json(), { statusCode: 403, code: 'FORBIDDEN', message: /admin/ })

  for (let i = 0; i < 20; i++) await app.inject({ url: '/v1/me', headers: user.auth })
  await app.inject({ url: '/nowhere' })
  app.metrics.cacheHits.inc({ layer: 'memory' }, 9)
  app.metrics.cacheMisses.inc()

  const res = await app.inject({ url: '/v1/stats', headers: admin.auth })
  t.equal(res.statusCode, 200, res.body)
  const stats = res.json()
  t.match(stats, {
    instance: { pid: process.pid, hostname: String, uptimeSeconds: Number, worker: false },
    requests: { windowSeconds: Number, count: Number, perSecond: Number, errorRate: 0, rateLimited: 0 },
    db: { kind: 'postgres', total: Number, idle: Number, waiting: 0 },
    websocket: { connections: 0, messagesIn: 0, messagesOut: 0 },
    cache: { hits: 9, misses: 1, hitRate: 0.9 },
    memory: { rss: Number, heapUsed: Number, heapTotal: Number, external: Number }
  })
  const delay: unknown = stats.eventLoopDelayMs
  t.ok(delay === null || (typeof delay === 'number' && delay >= 0), `eventLoopDelayMs a number, or null for a sample with no tick: ${String(delay)}`)
  // register ×2, 401, 403, 20 × /me, 404: 25 requests before this one.
  t.equal(stats.requests.count, 25)
  t.equal(stats.requests.clientErrorRate, 0.12, '401, 403 and 404 of 25')
  t.ok(stats.requests.perSecond > 0)
  const { p50, p95, p99, max } = stats.requests.latencyMs
  t.ok(p50 > 0 && p50 <= p95 && p95 <= p99 && p99 <= max, `p50 ${p50} p95 ${p95} p99 ${p99} max ${max}`)
  t.ok(stats.db.total >= 1)
  t.ok(stats.memory.rss > stats.memory.heapUsed)
})

t.test('the stored admin permission decides, not the one a token of ours carries', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  t.equal((await app.inject({ url: '/v1/stats', headers: user.auth })).statusCode, 403)
  await app.db.updateTable('users').set({ permissions: ['file.read', 'file.write', 'admin'] }).where('id', '=', user.id).execute()
  const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password: 'correct horse battery' } })
  const { accessToken, user: me } = login.json<{ accessToken: string, user: { permissions: string[] } }>()
  t.ok(me.permissions.includes('admin'))
  t.equal((await app.inject({ url: '/v1/stats', headers: { authorization: `Bearer ${accessToken}` } })).statusCode, 200)
  await app.db.updateTable('users').set({ permissions: ['file.read', 'file.write'] }).where('id', '=', user.id).execute()
  t.equal((await app.inject({ url: '/v1/stats', headers: { authorization: `Bearer ${accessToken}` } })).statusCode, 403, 'revoked: the token that says admin is refused at once')
})
