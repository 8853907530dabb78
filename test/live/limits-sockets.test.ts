import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, listen, REDIS_URL, registerUser, sleep } from '../helpers/app.js'
import { request } from '../helpers/http.js'
import { connect, refusedUpgrade, type Client, type Closed } from '../helpers/ws.js'

/**
 * Hardening, finding 7: RPC calls count against the user's REST budget (same store, same key),
 * sockets per user are bounded (WS_MAX_SOCKETS_PER_USER) and so are sockets per instance
 * (WS_MAX_CONNECTIONS).
 */

const calm = { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }

async function closedWithin (c: Client, ms = 10_000): Promise<Closed | 'still open'> {
  return await Promise.race([c.closed, sleep(ms).then(() => 'still open' as const)])
}

t.test('RPC calls are charged to the user\'s REST budget', async t => {
  const MAX = 5
  const url = await createTestDatabase(t)
  const app = await build(t, { ...calm, DATABASE_URL: url, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: String(MAX), RATE_LIMIT_WINDOW_MS: '60000' })
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user) // REST: 1 of 5
  const pg = await dbClient(t, url)
  const revision = async (): Promise<number> => Number((await pg.query<{ revision: number }>('SELECT revision FROM workspaces WHERE id = $1', [workspaceId])).rows[0]?.revision)
  const c = await connect(t, base, { token: user.token })
  t.equal((await request(app, 'GET', '/v1/me', { token: user.token })).statusCode, 200, 'REST: 2 of 5')

  for (let i = 1; i <= MAX - 2; i++) {
    t.match(await c.rpc('files.write', { workspaceId, path: `/f${i}`, content: 'x' }), { type: 'rpc.result' }, `RPC: ${i + 2} of ${MAX}`)
  }
  t.equal(await revision(), MAX - 2)
  const over = await c.rpc('files.write', { workspaceId, path: '/over', content: 'x' })
  t.match(over, { type: 'rpc.error', error: { code: 'RATE_LIMITED', message: String, details: { limit: MAX, windowMs: 60_000, retryAfter: Number } } }, 'the call past the budget')
  t.equal(await revision(), MAX - 2, 'and it changed nothing')
  t.match(await c.rpc('files.read', { workspaceId, path: '/f1' }), { type: 'rpc.error', error: { code: 'RATE_LIMITED' } }, 'reads count too')
  t.equal((await request(app, 'GET', '/v1/me', { token: user.token })).statusCode, 429, 'REST is over the same budget')
  t.notOk(c.isClosed, 'the socket stays open')
  t.match((await app.inject({ url: '/metrics' })).body, /^workbench_rate_limited_total\{limit="api"\} 3$/m, 'every refusal counted')

  // Another user's budget is their own.
  const other = await registerUser(app)
  const theirs = await connect(t, base, { token: other.token })
  t.match(await theirs.rpc('tree.list', { workspaceId: await createWorkspace(app, other), path: '/' }), { type: 'rpc.result' })
})

t.test('over Redis: REST on one instance and RPC on another draw on one budget', async t => {
  const MAX = 4
  const env = { ...calm, DATABASE_URL: await createTestDatabase(t), REDIS_URL, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: String(MAX), RATE_LIMIT_KEY_PREFIX: `wb:test:${randomBytes(6).toString('hex')}:` }
  const a = await build(t, env)
  const b = await build(t, env)
  const user = await registerUser(a)
  const workspaceId = await createWorkspace(a, user) // 1 of 4, on A
  t.equal((await request(a, 'GET', '/v1/me', { token: user.token })).statusCode, 200, '2 of 4, on A')
  const onB = await connect(t, await listen(b), { token: user.token })
  t.match(await onB.rpc('tree.list', { workspaceId, path: '/' }), { type: 'rpc.result' }, '3 of 4, RPC on B')
  t.match(await onB.rpc('tree.list', { workspaceId, path: '/' }), { type: 'rpc.result' }, '4 of 4, RPC on B')
  t.match(await onB.rpc('tree.list', { workspaceId, path: '/' }), { type: 'rpc.error', error: { code: 'RATE_LIMITED', details: { limit: MAX } } }, 'the 5th, RPC on B')
  t.equal((await request(a, 'GET', '/v1/me', { token: user.token })).statusCode, 429, 'REST on A is over it too')
})

t.test('WS_MAX_SOCKETS_PER_USER: sockets per user on an instance', async t => {
  const app = await build(t, { ...calm, WS_MAX_SOCKETS_PER_USER: '2' })
  const base = await listen(app)
  const user = await registerUser(app)
  const first = await connect(t, base, { token: user.token })
  await connect(t, base, { token: user.token })
  t.pass('two sockets: both connected')

  const third = await connect(t, base, { headers: { authorization: `Bearer ${user.token}` } })
  t.match(await closedWithin(third), { code: 1013, reason: /too many sockets for this user/ }, 'a third (header token): 1013')
  t.notOk(third.messages.some(m => m.type === 'connected'), 'never connected')
  const byMessage = await connect(t, base)
  byMessage.send({ type: 'auth', token: user.token })
  t.match(await closedWithin(byMessage), { code: 1013 }, 'a third (auth message): 1013')
  t.notOk(byMessage.messages.some(m => m.type === 'connected'), 'never connected')

  const other = await registerUser(app)
  t.match((await connect(t, base, { token: other.token })).messages[0], { type: 'connected' }, 'another user is not affected')

  // A closed socket frees its place (once the server has seen the close).
  first.close()
  await first.closed
  for (let attempt = 0; ; attempt++) {
    const again = await connect(t, base, { headers: { authorization: `Bearer ${user.token}` } })
    const m = await again.next(m => m.type === 'connected', 'connected').catch(() => undefined)
    if (m !== undefined) break
    if (attempt >= 50) throw new Error('the freed place was never given again')
    await sleep(20)
  }
  t.pass('after one closed, a new one is accepted')
})

t.test('WS_MAX_CONNECTIONS: sockets per instance; the upgrade past it is answered 503', async t => {
  const app = await build(t, { ...calm, WS_MAX_CONNECTIONS: '3' })
  const base = await listen(app)
  const user = await registerUser(app)
  const open = [await connect(t, base, { token: user.token }), await connect(t, base), await connect(t, base)]
  t.equal(open.filter(c => !c.isClosed).length, 3, 'three sockets (authenticated or not) are accepted')

  const refused = await refusedUpgrade(base, { authorization: `Bearer ${user.token}` })
  t.equal(refused.status, 503)
  t.match(refused.body, { statusCode: 503, code: 'UNAVAILABLE', message: /WS_MAX_CONNECTIONS/ })
  t.equal(refused.headers['retry-after'], '5')
  t.equal(app.websocketServer.clients.size, 3, 'no fourth socket was opened')
  t.notOk(open.some(c => c.isClosed), 'the open ones are not affected')

  open[1]?.close()
  await open[1]?.closed
  for (let attempt = 0; ; attempt++) {
    const ok = await connect(t, base, { token: user.token }).then(() => true, () => false)
    if (ok) break
    if (attempt >= 50) throw new Error('the freed place was never given again')
    await sleep(20)
  }
  t.pass('after one closed, an upgrade is accepted again')
})
