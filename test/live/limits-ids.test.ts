import { randomUUID } from 'node:crypto'
import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, listen, registerUser } from '../helpers/app.js'
import { request } from '../helpers/http.js'
import { connect, refusedUpgrade, type Msg } from '../helpers/ws.js'

/**
 * Hardening, findings 10 and 11: X-Session-Id on the upgrade and every id in a message are
 * checked as REST checks them, before any query; an INTERNAL error's own text (a database's) is
 * never answered outside development, over REST or WebSocket.
 */

const calm = { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }
const HOSTILE_SESSION = '../../../etc/passwd<script>'
/** What database error text looks like: none of it may reach a client in production. */
const DB_TEXT = /invalid input syntax|relation|column|syntax error|uuid:/i

t.test('X-Session-Id on the upgrade: a UUID, or refused as REST refuses it', async t => {
  const app = await build(t, calm)
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)

  const rest = await request(app, 'GET', '/v1/workspaces', { token: user.token, headers: { 'x-session-id': HOSTILE_SESSION } })
  t.equal(rest.statusCode, 400, 'REST')
  const restBody = rest.json<{ code: string, message: string }>()
  for (const [label, headers] of [
    ['with a header token', { authorization: `Bearer ${user.token}`, 'x-session-id': HOSTILE_SESSION }],
    ['without one', { 'x-session-id': HOSTILE_SESSION }],
    ['urn:uuid: form', { authorization: `Bearer ${user.token}`, 'x-session-id': `urn:uuid:${randomUUID()}` }]
  ] as const) {
    const refused = await refusedUpgrade(base, headers)
    t.equal(refused.status, 400, `${label}: 400 before the upgrade`)
    t.match(refused.body, { statusCode: 400, code: restBody.code, message: restBody.message }, `${label}: REST's answer`)
  }
  t.equal(app.websocketServer.clients.size, 0, 'no socket was opened')

  // A UUID is taken: it is the socket's session, shown to others and written with its changes.
  const session = randomUUID()
  const mine = await connect(t, base, { token: user.token, headers: { 'x-session-id': session } })
  const theirs = await connect(t, base, { token: user.token })
  await mine.join(workspaceId)
  await theirs.join(workspaceId)
  mine.send({ type: 'broadcast', channel: `workspace:${workspaceId}`, data: { cursor: 1 } })
  t.match(await theirs.next(m => m.type === 'broadcast', 'broadcast'), { from: { userId: user.id, sessionId: session } })
  t.match(await mine.rpc('files.write', { workspaceId, path: '/a.txt', content: 'a' }), { type: 'rpc.result' })
  const event = await theirs.next(m => m.type === 'event', 'event')
  t.match(event.data, { path: '/a.txt', sessionId: session })
})

t.test('the auth message\'s sessionId: a UUID, or VALIDATION_FAILED and no authentication', async t => {
  const app = await build(t, calm)
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  const c = await connect(t, base)
  for (const sessionId of [HOSTILE_SESSION, `urn:uuid:${randomUUID()}`]) {
    t.match(await c.request({ type: 'auth', token: user.token, sessionId }, ['error', 'connected']), { type: 'error', code: 'VALIDATION_FAILED' }, sessionId)
  }
  t.match(await c.request({ type: 'subscribe', channel: `workspace:${workspaceId}` }, ['error', 'subscribed']), { type: 'error', code: 'UNAUTHENTICATED' }, 'still not authenticated')
  const session = randomUUID()
  t.match(await c.request({ type: 'auth', token: user.token, sessionId: session }, ['error', 'connected']), { type: 'connected' }, 'a UUID is taken')
})

t.test('in production: ids checked before any query, and no database text in any answer', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { ...calm, DATABASE_URL: url, NODE_ENV: 'production', RATE_LIMIT_ENABLED: 'false' })
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  const c = await connect(t, base, { token: user.token })
  const errorsSeen: Msg[] = []
  const check = (m: Msg, label: string): void => {
    errorsSeen.push(m)
    t.notMatch(JSON.stringify(m), DB_TEXT, `${label}: no database text`)
  }

  const dashes = `workspace:${'-'.repeat(36)}`
  for (const channel of [dashes, `workspace:${'0'.repeat(36)}`]) {
    for (const type of ['subscribe', 'unsubscribe', 'broadcast']) {
      const answer = await c.request({ type, channel, ...(type === 'broadcast' ? { data: 1 } : {}) }, ['error', 'subscribed', 'unsubscribed'])
      t.match(answer, { type: 'error', code: 'VALIDATION_FAILED', details: { errors: [{ path: '/channel' }] } }, `${type} ${channel}`)
      check(answer, `${type} ${channel}`)
    }
  }
  // Whatever answers an id the schema lets through and PostgreSQL refuses, it is no database text.
  const odd = `urn:uuid:${randomUUID()}`
  const rpc = await c.rpc('tree.list', { workspaceId: odd, path: '/' })
  check(rpc, 'rpc with a urn:uuid: id')
  const rest = await request(app, 'GET', `/v1/workspaces/${odd}/tree`, { token: user.token })
  t.notMatch(rest.body, DB_TEXT, 'REST with a urn:uuid: id: no database text')

  // A query that fails inside the database: INTERNAL, with the generic message, over both.
  const pg = await dbClient(t, url)
  await pg.query('ALTER TABLE workspace_members RENAME TO workspace_members_away')
  t.teardown(async () => { await pg.query('ALTER TABLE workspace_members_away RENAME TO workspace_members') })
  const failed = await c.subscribe(workspaceId)
  t.match(failed, { type: 'error', code: 'INTERNAL', message: 'internal server error' }, 'subscribe: INTERNAL, generic')
  check(failed, 'subscribe when the database fails')
  const failedRpc = await c.rpc('tree.list', { workspaceId, path: '/' })
  t.match(failedRpc, { type: 'rpc.error', error: { code: 'INTERNAL', message: 'internal server error' } }, 'rpc: INTERNAL, generic')
  check(failedRpc, 'rpc when the database fails')
  const failedRest = await request(app, 'GET', `/v1/workspaces/${workspaceId}/tree`, { token: user.token })
  t.equal(failedRest.statusCode, 500)
  t.match(failedRest.json(), { code: 'INTERNAL', message: 'internal server error' }, 'REST: INTERNAL, generic')
  t.notOk(c.isClosed, 'the socket stays open through all of it')
})
