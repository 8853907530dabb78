import t from 'tap'
import { deflateRawSync } from 'node:zlib'
import { build, createTestDatabase, createWorkspace, listen, registerUser, sleep, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { encodePath } from '../helpers/files.js'
import { expectStatus, request } from '../helpers/http.js'
import { connect, withoutTimes, type Client, type Msg } from '../helpers/ws.js'
import { accessClaims, nowSeconds, signJwt } from '../helpers/jwt.js'

/** The WebSocket protocol of docs/api.md ("WebSocket: GET /v1/ws"), over real sockets. */

const AUTH_TIMEOUT_MS = 300
const MAX_PAYLOAD = 16 * 1024
const key = { alg: 'HS256', secret: TEST_SECRET } as const
// The app runs in the test process beside busy clients (and other test files): not an overload test.
const calm = { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }

async function closedWithin (c: Client, ms: number): Promise<{ code: number, reason: string } | 'still open'> {
  return await Promise.race([c.closed, sleep(ms).then(() => 'still open' as const)])
}

t.test('protocol', async t => {
  const app = await build(t, { ...calm, WS_AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS), WS_MAX_PAYLOAD: String(MAX_PAYLOAD) })
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)

  t.test('header token: connected at once, with the configuration', async t => {
    const c = await connect(t, base, { token: user.token })
    t.match(c.messages[0], { type: 'connected', clientId: String, serverTime: String, config: { heartbeatMs: 30_000, maxPayload: MAX_PAYLOAD } })
    t.equal(c.messages.length, 1)
  })

  t.test('no token: closed with 4401 after WS_AUTH_TIMEOUT_MS', async t => {
    const start = Date.now()
    const c = await connect(t, base)
    const closed = await c.closed
    const took = Date.now() - start
    t.equal(closed.code, 4401)
    t.ok(took >= AUTH_TIMEOUT_MS - 20 && took < AUTH_TIMEOUT_MS + 2_000, `closed after ${took} ms`)
    t.same(c.messages, [], 'never connected')
  })

  t.test('a message before auth is refused, and the socket still waits for auth', async t => {
    const c = await connect(t, base)
    t.match(await c.request({ type: 'subscribe', channel: `workspace:${workspaceId}` }, ['error']), { type: 'error', code: 'UNAUTHENTICATED' })
    c.send({ type: 'auth', token: user.token })
    t.match(await c.next(m => m.type === 'connected', 'connected'), { type: 'connected' })
    t.match(await c.subscribe(workspaceId), { type: 'subscribed' })
  })

  t.test('a token without exp (an outside provider may issue one) keeps its socket open', async t => {
    const { exp: _, ...claims } = accessClaims(user.id, user.sessionId)
    const c = await connect(t, base, { token: signJwt(claims, key) })
    t.match(await c.subscribe(workspaceId), { type: 'subscribed' })
    await sleep(200)
    t.match(await c.request({ type: 'ping' }, ['pong']), { type: 'pong' })
    t.notOk(c.isClosed, 'not closed as expired')
  })

  t.test('bad tokens close with 4401', async t => {
    const forged = signJwt(accessClaims(user.id, user.sessionId), { alg: 'HS256', secret: 'another-secret-of-at-least-thirty-two-chars' })
    const expired = signJwt(accessClaims(user.id, user.sessionId, { iat: nowSeconds() - 1000, exp: nowSeconds() - 10 }), key)
    const none = signJwt(accessClaims(user.id, user.sessionId), { alg: 'none' })
    for (const [name, token] of [['garbage', 'not-a-jwt'], ['wrong secret', forged], ['alg none', none], ['expired', expired]]) {
      const byHeader = await connect(t, base, { headers: { authorization: `Bearer ${token}` } })
      t.equal((await byHeader.closed).code, 4401, `${name} in the header`)
      t.notOk(byHeader.messages.some(m => m.type === 'connected'), `${name} in the header: never connected`)
      const byMessage = await connect(t, base)
      byMessage.send({ type: 'auth', token })
      t.equal((await byMessage.closed).code, 4401, `${name} in an auth message`)
      t.notOk(byMessage.messages.some(m => m.type === 'connected'), `${name} in an auth message: never connected`)
      if (name === 'expired') t.equal((await byMessage.closed).reason, 'TOKEN_EXPIRED')
    }
    const malformed = await connect(t, base, { headers: { authorization: `Basic ${user.token}` } })
    t.equal((await malformed.closed).code, 4401, 'a header that is not Bearer')
  })

  t.test('a token in the query string is not accepted', async t => {
    for (const name of ['token', 'access_token', 'authorization']) {
      const c = await connect(t, base, { query: `?${name}=${user.token}` })
      const closed = await c.closed
      t.equal(closed.code, 4401, `?${name}=`)
      t.same(c.messages, [], `?${name}=: never connected`)
    }
  })

  t.test('a token that expires while connected: 4401 when it expires; a fresh auth before that extends it', async t => {
    const short = (): string => signJwt(accessClaims(user.id, user.sessionId, { exp: nowSeconds() + 2 }), key)
    const lapsing = await connect(t, base, { token: short() })
    const renewed = await connect(t, base)
    renewed.send({ type: 'auth', token: short() })
    await renewed.next(m => m.type === 'connected', 'connected')
    await sleep(500)
    renewed.send({ type: 'auth', token: user.token })
    t.match(await renewed.request({ type: 'ping' }, ['pong']), { type: 'pong' })
    const closed = await closedWithin(lapsing, 4_000)
    t.same(closed, { code: 4401, reason: 'TOKEN_EXPIRED' }, 'the unrenewed socket is closed when its token expires')
    await sleep(500)
    t.notOk(renewed.isClosed, 'the renewed socket stays open past the first token\'s expiry')
    t.match(await renewed.request({ type: 'ping' }, ['pong']), { type: 'pong' })
    t.equal(renewed.messages.filter(m => m.type === 'connected').length, 1, 're-auth sends no second connected')
    // A fresh token for another user cannot take the socket over.
    const other = await registerUser(app)
    renewed.send({ type: 'auth', token: other.token })
    t.equal((await renewed.closed).code, 4401)
  })

  t.test('subscribing to a workspace without access: WORKSPACE_NOT_FOUND', async t => {
    const stranger = await registerUser(app)
    const c = await connect(t, base, { token: stranger.token })
    t.match(await c.subscribe(workspaceId), { type: 'error', code: 'WORKSPACE_NOT_FOUND', channel: `workspace:${workspaceId}` })
    t.match(await c.subscribe('00000000-0000-4000-8000-000000000000'), { type: 'error', code: 'WORKSPACE_NOT_FOUND' })
    // No events leak to it.
    await app.inject({ method: 'PUT', url: `/v1/workspaces/${workspaceId}/files/secret.txt`, headers: user.auth, payload: { content: 's' } })
    await c.request({ type: 'ping' }, ['pong'])
    await sleep(200)
    t.same(c.messages.filter(m => m.type === 'event'), [])
    t.notOk(c.isClosed)
  })

  t.test('removing a subscribed member closes their socket with 4403', async t => {
    const member = await registerUser(app)
    const put = await app.inject({ method: 'PUT', url: `/v1/workspaces/${workspaceId}/members`, headers: user.auth, payload: { email: member.email, role: 'viewer' } })
    t.equal(put.statusCode, 200)
    const theirs = await connect(t, base, { token: member.token })
    const owners = await connect(t, base, { token: user.token })
    t.match(await theirs.subscribe(workspaceId), { type: 'subscribed' })
    await owners.subscribe(workspaceId)
    const del = await app.inject({ method: 'DELETE', url: `/v1/workspaces/${workspaceId}/members/${member.id}`, headers: user.auth })
    t.equal(del.statusCode, 204)
    t.match(await closedWithin(theirs, 5_000), { code: 4403 })
    t.notOk(owners.isClosed, 'the owner stays subscribed')
    t.match(await owners.request({ type: 'ping' }, ['pong']), { type: 'pong' })
  })

  t.test('losing access to one of several subscribed workspaces ends that subscription only', async t => {
    const member = await registerUser(app)
    const own = (await app.inject({ method: 'POST', url: '/v1/workspaces', headers: member.auth, payload: { name: 'mine' } })).json<{ id: string }>().id
    const put = await app.inject({ method: 'PUT', url: `/v1/workspaces/${workspaceId}/members`, headers: user.auth, payload: { email: member.email, role: 'viewer' } })
    t.equal(put.statusCode, 200)
    const theirs = await connect(t, base, { token: member.token })
    t.match(await theirs.subscribe(workspaceId), { type: 'subscribed' })
    t.match(await theirs.subscribe(own), { type: 'subscribed' })
    const del = await app.inject({ method: 'DELETE', url: `/v1/workspaces/${workspaceId}/members/${member.id}`, headers: user.auth })
    t.equal(del.statusCode, 204, 'the owner removes them')
    const channel = `workspace:${workspaceId}`
    t.match(await theirs.until(() => theirs.messages.find(m => m.type === 'unsubscribed' && m.channel === channel), 'unsubscribed'), { type: 'unsubscribed', channel })
    t.ok(theirs.messages.some(m => m.type === 'error' && m.code === 'WORKSPACE_NOT_FOUND' && m.channel === channel), 'with the reason')
    t.notOk(theirs.isClosed, 'the socket stays open')
    // Events of the lost workspace stop; those of their own keep coming.
    await app.inject({ method: 'PUT', url: `/v1/workspaces/${workspaceId}/files/after-leaving.txt`, headers: user.auth, payload: { content: 's' } })
    await app.inject({ method: 'PUT', url: `/v1/workspaces/${own}/files/mine.txt`, headers: member.auth, payload: { content: 'm' } })
    await theirs.until(() => theirs.messages.find(m => m.type === 'event' && m.channel === `workspace:${own}`), 'own event')
    await sleep(200)
    t.same(theirs.messages.filter(m => m.type === 'event' && m.channel === channel), [], 'nothing from the lost workspace')
  })

  t.test('frames over maxPayload close with 1009, compressed or not', async t => {
    const plain = await connect(t, base, { token: user.token })
    plain.send({ type: 'ping', pad: 'x'.repeat(MAX_PAYLOAD) })
    t.equal((await plain.closed).code, 1009)

    const deflated = await connect(t, base, { token: user.token, perMessageDeflate: true })
    t.match(deflated.ws.extensions, /permessage-deflate/, 'compression negotiated')
    // Under the bound after decompression: answered.
    t.match(await deflated.request({ type: 'ping', pad: 'x'.repeat(MAX_PAYLOAD / 2) }, ['pong', 'error']), { type: String })
    const huge = JSON.stringify({ type: 'ping', pad: 'x'.repeat(MAX_PAYLOAD * 8) })
    t.ok(deflateRawSync(huge).length < MAX_PAYLOAD / 10, 'compressed, the frame is far under the bound')
    deflated.send(huge)
    t.equal((await deflated.closed).code, 1009, '1009 for a compressed frame over the bound once inflated')
  })

  t.test('bad JSON and unknown types answer error; the socket stays usable', async t => {
    const c = await connect(t, base, { token: user.token })
    t.match(await c.request('{bad' as unknown as Record<string, unknown>, ['error']), { type: 'error', code: 'VALIDATION_FAILED', message: String })
    t.match(await c.request({ type: 'ping' }, ['pong']), { type: 'pong', timestamp: String })
    t.match(await c.request({ type: 'launch' }, ['error']), { type: 'error', code: 'VALIDATION_FAILED' })
    t.match(await c.request({ nothing: true }, ['error']), { type: 'error', code: 'VALIDATION_FAILED' })
    t.match(await c.request({ type: 'subscribe', channel: 'nope' }, ['error']), { type: 'error', code: 'VALIDATION_FAILED' })
    t.match(await c.request({ type: 'broadcast', channel: `workspace:${workspaceId}`, data: 1 }, ['error']), { type: 'error', code: 'VALIDATION_FAILED' }, 'broadcast before subscribing')
    t.match(await c.request({ type: 'ping' }, ['pong']), { type: 'pong' })
    t.notOk(c.isClosed)
  })

  t.test('rpc: unknown method, stale ifMatch, and every method equal to its REST route', async t => {
    const c = await connect(t, base, { token: user.token })
    t.match(await c.rpc('files.format', { workspaceId }), { type: 'rpc.error', id: String, error: { code: 'METHOD_NOT_FOUND', message: String } })
    t.match(await c.rpc('files.read', { workspaceId, path: '/x', extra: 1 }), { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } })

    // The same work through REST in one workspace and through RPC in another: same results.
    const restWs = await createWorkspace(app, user, 'rest')
    const rpcWs = await createWorkspace(app, user, 'rpc')
    type Step = [method: string, params: Record<string, unknown>, rest: { method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, payload?: Record<string, unknown>, headers?: Record<string, string> }]
    const file = (path: string): string => `/v1/workspaces/${restWs}/files/${encodePath(path)}`
    const steps: Step[] = [
      ['files.write', { path: '/src/a.ts', content: 'one' }, { method: 'PUT', url: file('/src/a.ts'), payload: { content: 'one' } }],
      ['files.write', { path: '/src/a.ts', content: 'two', ifMatch: '"2"', metadata: { k: 1 } }, { method: 'PUT', url: file('/src/a.ts'), payload: { content: 'two', metadata: { k: 1 } }, headers: { 'if-match': '"2"' } }],
      ['files.write', { path: '/src/a.ts', content: 'three', ifMatch: '"1"' }, { method: 'PUT', url: file('/src/a.ts'), payload: { content: 'three' }, headers: { 'if-match': '"1"' } }],
      ['files.write', { path: '/bin.dat', content: 'AAEC/w==', encoding: 'base64' }, { method: 'PUT', url: file('/bin.dat'), payload: { content: 'AAEC/w==', encoding: 'base64' } }],
      ['files.read', { path: '/src/a.ts' }, { method: 'GET', url: file('/src/a.ts') }],
      ['files.read', { path: '/bin.dat' }, { method: 'GET', url: file('/bin.dat') }],
      ['files.read', { path: '/src' }, { method: 'GET', url: file('/src') }],
      ['files.read', { path: '/missing' }, { method: 'GET', url: file('/missing') }],
      ['operations.apply', { type: 'mkdir', path: '/lib/deep' }, { method: 'POST', url: `/v1/workspaces/${restWs}/operations`, payload: { type: 'mkdir', path: '/lib/deep' } }],
      ['operations.apply', { type: 'copy', path: '/src', newPath: '/lib/deep/src' }, { method: 'POST', url: `/v1/workspaces/${restWs}/operations`, payload: { type: 'copy', path: '/src', newPath: '/lib/deep/src' } }],
      ['operations.apply', { type: 'create', path: '/src/a.ts', content: 'x' }, { method: 'POST', url: `/v1/workspaces/${restWs}/operations`, payload: { type: 'create', path: '/src/a.ts', content: 'x' } }],
      ['operations.batch', { operations: [{ type: 'create', path: '/b.txt', content: 'b' }, { type: 'move', path: '/b.txt', newPath: '/c.txt' }] }, { method: 'POST', url: `/v1/workspaces/${restWs}/operations/batch`, payload: { operations: [{ type: 'create', path: '/b.txt', content: 'b' }, { type: 'move', path: '/b.txt', newPath: '/c.txt' }] } }],
      ['operations.batch', { operations: [{ type: 'create', path: '/d.txt', content: 'd' }, { type: 'update', path: '/nope', content: 'n' }] }, { method: 'POST', url: `/v1/workspaces/${restWs}/operations/batch`, payload: { operations: [{ type: 'create', path: '/d.txt', content: 'd' }, { type: 'update', path: '/nope', content: 'n' }] } }],
      ['files.delete', { path: '/c.txt' }, { method: 'DELETE', url: file('/c.txt') }],
      ['files.delete', { path: '/lib', ifMatch: '"0"' }, { method: 'DELETE', url: file('/lib'), headers: { 'if-match': '"0"' } }],
      ['files.delete', { path: '/lib' }, { method: 'DELETE', url: file('/lib') }],
      ['tree.list', { path: '/', depth: 0 }, { method: 'GET', url: `/v1/workspaces/${restWs}/tree?path=/&depth=0` }],
      ['tree.list', { path: '/', depth: 1, limit: 1 }, { method: 'GET', url: `/v1/workspaces/${restWs}/tree?path=/&depth=1&limit=1` }],
      ['changes.list', { since: 0 }, { method: 'GET', url: `/v1/workspaces/${restWs}/changes?since=0` }],
      ['changes.list', { since: 2, limit: 2 }, { method: 'GET', url: `/v1/workspaces/${restWs}/changes?since=2&limit=2` }]
    ]
    const methods = new Set<string>()
    for (const [method, params, rest] of steps) {
      methods.add(method)
      const res = await app.inject({ ...rest, headers: { ...user.auth, ...rest.headers } })
      const answer: Msg = await c.rpc(method, { workspaceId: rpcWs, ...params })
      const label = `${method} ${JSON.stringify(params).slice(0, 80)}`
      if (res.statusCode < 400) {
        t.equal(answer.type, 'rpc.result', `${label}: a result, as REST's ${res.statusCode}`)
        t.same(withoutTimes(answer.result), withoutTimes(res.json()), `${label}: the REST body`)
      } else {
        const err = res.json<{ code: string, details?: unknown }>()
        t.equal(answer.type, 'rpc.error', `${label}: an error, as REST's ${res.statusCode}`)
        const rpcError = answer.error as { code: string, message: string, details?: unknown }
        t.equal(rpcError.code, err.code, `${label}: REST's code ${err.code}`)
        t.same(withoutTimes(rpcError.details), withoutTimes(err.details), `${label}: REST's details`)
        if (method === 'files.write') t.equal(err.code, 'PRECONDITION_FAILED', 'a stale ifMatch is PRECONDITION_FAILED')
      }
    }
    t.same([...methods].sort(), ['changes.list', 'files.delete', 'files.read', 'files.write', 'operations.apply', 'operations.batch', 'tree.list'])
    // RPC writes are changes like any other: the rpc workspace's feed matches the REST one's.
    const feeds = await Promise.all([restWs, rpcWs].map(async id => (await app.inject({ method: 'GET', url: `/v1/workspaces/${id}/changes?since=0`, headers: user.auth })).json<{ head: number }>()))
    t.ok((feeds[0]?.head ?? 0) > 5)
    t.same(withoutTimes(feeds[1]), withoutTimes(feeds[0]))
  })
})

t.test('per-socket message rate limit: RATE_LIMITED, and the socket recovers', async t => {
  const app = await build(t, { ...calm, WS_MESSAGES_PER_SECOND: '5' })
  const base = await listen(app)
  const user = await registerUser(app)
  const c = await connect(t, base, { token: user.token })
  for (let i = 0; i < 20; i++) c.send({ type: 'ping' })
  await c.until(() => c.messages.length >= 21 ? true : undefined, '20 answers')
  const pongs = c.messages.filter(m => m.type === 'pong').length
  const limited = c.messages.filter(m => m.type === 'error' && m.code === 'RATE_LIMITED')
  t.ok(pongs >= 5 && pongs <= 7, `${pongs} pongs (a burst of 5)`)
  t.equal(limited.length, 20 - pongs, 'the rest RATE_LIMITED')
  t.match(limited[0], { type: 'error', code: 'RATE_LIMITED', message: String })
  await sleep(1_100)
  t.match(await c.request({ type: 'ping' }, ['pong', 'error']), { type: 'pong' }, 'after a second it answers again')
  t.notOk(c.isClosed)
})

t.test('server shutdown closes sockets with 1001', async t => {
  const app = await build(t, calm)
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  const subscribed = await connect(t, base, { token: user.token })
  await subscribed.subscribe(workspaceId)
  const waiting = await connect(t, base)
  await app.close()
  t.match(await closedWithin(subscribed, 5_000), { code: 1001 })
  t.match(await closedWithin(waiting, 5_000), { code: 1001 })
})

t.test('tokens never appear in the server logs', async t => {
  const server = await spawnServer(t, { env: { DATABASE_URL: await createTestDatabase(t), JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'trace', WS_AUTH_TIMEOUT_MS: '300' } })
  const u = await registerUser(server.base)
  const workspaceId = await createWorkspace(server.base, u)
  const expired = signJwt(accessClaims(u.id, u.sessionId, { iat: nowSeconds() - 1000, exp: nowSeconds() - 10 }), key)
  const forged = signJwt(accessClaims(u.id, u.sessionId), { alg: 'HS256', secret: 'another-secret-of-at-least-thirty-two-chars' })
  const byHeader = await connect(t, server.base, { token: u.token })
  await byHeader.subscribe(workspaceId)
  await byHeader.rpc('files.write', { workspaceId, path: '/a.txt', content: 'a' })
  await byHeader.rpc('files.read', { workspaceId, path: '/nope' })
  const byMessage = await connect(t, server.base)
  byMessage.send({ type: 'auth', token: u.token })
  await byMessage.next(m => m.type === 'connected', 'connected')
  for (const token of [expired, forged]) {
    const c = await connect(t, server.base, { headers: { authorization: `Bearer ${token}` } })
    await c.closed
    const m = await connect(t, server.base)
    m.send({ type: 'auth', token })
    await m.closed
  }
  byHeader.close()
  byMessage.close()
  expectStatus(await request(server.base, 'GET', `/v1/workspaces/${workspaceId}`, { token: u.token }), 200, `GET /v1/workspaces/${workspaceId}`)
  await sleep(300)
  const logs = server.output()
  t.match(logs, /\/v1\/ws/, 'the WebSocket requests were logged')
  for (const [name, token] of [['valid', u.token], ['expired', expired], ['forged', forged]] as const) {
    t.notOk(logs.includes(token), `the ${name} token is not in the logs`)
    // Nor its signature on its own (a token split across fields, or truncated).
    t.notOk(logs.includes(token.split('.')[2] ?? '<none>'), `the ${name} token's signature is not in the logs`)
  }

  // A client that puts its token in the query string is refused, and the logged request line has
  // it redacted (the logger's req serializer in src/app.ts).
  const leaked = await registerUser(server.base)
  const query = await connect(t, server.base, { query: `?token=${leaked.token}` })
  t.equal((await query.closed).code, 4401)
  await sleep(200)
  t.notOk(server.output().includes(leaked.token.split('.')[2] ?? '<none>'), 'a token sent in the query string is not in the logs either')
})
