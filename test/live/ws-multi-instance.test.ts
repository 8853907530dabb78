import t from 'tap'
import { Redis } from 'ioredis'
import { createTestDatabase, createWorkspace, REDIS_URL, registerUser, sleep, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { expectStatus, request, type WriteResult } from '../helpers/http.js'
import { connect, range } from '../helpers/ws.js'

/**
 * Two server processes on two ports, one PostgreSQL database and one Redis: what is written
 * through one instance reaches the subscribers of the other, complete and in order.
 */

t.test('two instances share one event stream', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const env = { DATABASE_URL, REDIS_URL, JWT_SECRET: TEST_SECRET, WS_MESSAGES_PER_SECOND: '1000' }
  const [a, b] = await Promise.all([spawnServer(t, { env }), spawnServer(t, { env })])
  const owner = await registerUser(a.base)
  const workspaceId = await createWorkspace(a.base, owner)

  t.test('a subscriber on B gets all 1,000 writes made through A by 10 writers, in order', async t => {
    const onB = await connect(t, b.base, { token: owner.token })
    const subscribed = await onB.subscribe(workspaceId)
    t.match(subscribed, { type: 'subscribed', channel: `workspace:${workspaceId}`, revision: 0 })
    t.notOk('reset' in subscribed, 'a fresh subscription is not a reset')
    const onA = await connect(t, a.base, { token: owner.token })
    await onA.subscribe(workspaceId)

    const written: number[] = []
    await Promise.all(range(1, 10).map(async writer => {
      for (let i = 1; i <= 100; i++) {
        const body = expectStatus<WriteResult>(await request(a.base, 'PUT', `/v1/workspaces/${workspaceId}/files/w${writer}/f${i}.txt`, { token: owner.token, payload: { content: `${writer}:${i}` } }), 201, `PUT /v1/workspaces/${workspaceId}/files/w${writer}/f${i}.txt`)
        written.push(body.revision)
      }
    }))
    t.same([...written].sort((x, y) => x - y), range(1, 1000), 'the writes took revisions 1..1000')

    const revs = await onB.untilRevision(workspaceId, 1000, 60_000)
    t.same(revs, range(1, 1000), 'B: every revision once, in order')
    t.same(await onA.untilRevision(workspaceId, 1000, 60_000), range(1, 1000), 'A: every revision once, in order')

    // Each event names its change: the paths of the 1,000 events are the 1,000 files written.
    const paths = new Set(onB.messages.filter(m => m.type === 'event').map(m => (m.data as { path: string }).path))
    t.equal(paths.size, 1000, 'B got 1,000 distinct files')
    t.ok(paths.has('/w10/f100.txt'))
    const last = onB.messages.find(m => m.type === 'event' && m.revision === 1000)
    t.match(last, { type: 'event', channel: `workspace:${workspaceId}`, event: 'file.changed', revision: 1000, data: { revision: 1000, op: String, kind: 'file', userId: owner.id } })

    // Nothing after the last write: no duplicates trickle in late.
    await sleep(2_500)
    t.equal(onB.revisions(workspaceId).length, 1000, 'no late duplicates on B')
    onA.close()
    onB.close()
  })

  t.test('a live event crosses instances through Redis, not only through the head check', async t => {
    const onB = await connect(t, b.base, { token: owner.token })
    const revision = await onB.join(workspaceId)
    // The database head check runs every 2 s; through Redis an event takes milliseconds.
    for (let i = 0; i < 3; i++) {
      const start = Date.now()
      const body = expectStatus<WriteResult>(await request(a.base, 'PUT', `/v1/workspaces/${workspaceId}/files/latency${i}.txt`, { token: owner.token, payload: { content: 'x' } }), 201, `PUT /v1/workspaces/${workspaceId}/files/latency${i}.txt`)
      t.equal(body.revision, revision + i + 1)
      await onB.untilRevision(workspaceId, body.revision, 10_000)
      const took = Date.now() - start
      t.ok(took < 1_000, `event ${body.revision} reached B in ${took} ms`)
    }
    onB.close()
  })

  t.test('a broadcast on A reaches subscribers on B (and A), not the sender', async t => {
    const other = await registerUser(b.base)
    expectStatus(await request(a.base, 'PUT', `/v1/workspaces/${workspaceId}/members`, { token: owner.token, payload: { email: other.email, role: 'viewer' } }), 200, `PUT /v1/workspaces/${workspaceId}/members`)
    const sender = await connect(t, a.base, { token: owner.token })
    const sameInstance = await connect(t, a.base, { token: other.token })
    const onB = await connect(t, b.base, { token: other.token })
    const elsewhere = await registerUser(b.base)
    const otherWorkspace = await createWorkspace(b.base, elsewhere)
    const otherChannel = await connect(t, b.base, { token: elsewhere.token })
    for (const c of [sender, sameInstance, onB]) t.match(await c.subscribe(workspaceId), { type: 'subscribed' })
    t.match(await otherChannel.subscribe(otherWorkspace), { type: 'subscribed' })

    const data = { cursor: { path: '/a.ts', line: 3, column: 7 } }
    sender.send({ type: 'broadcast', channel: `workspace:${workspaceId}`, data })
    const isBroadcast = (m: { type: string }): boolean => m.type === 'broadcast'
    const got = await onB.next(isBroadcast, 'broadcast on B')
    t.match(got, { type: 'broadcast', channel: `workspace:${workspaceId}`, data, from: { userId: owner.id, sessionId: owner.sessionId } })
    t.match(got.timestamp, /^\d{4}-\d{2}-\d{2}T/)
    t.same(got.data, data)
    t.match(await sameInstance.next(isBroadcast, 'broadcast on A'), { data, from: { userId: owner.id } })
    // Pings answered after the broadcast reached both others: the sender would have had it by now.
    await sender.request({ type: 'ping' }, ['pong'])
    await otherChannel.request({ type: 'ping' }, ['pong'])
    await sleep(300)
    t.equal(sender.messages.filter(isBroadcast).length, 0, 'the sender does not get its own broadcast')
    t.equal(otherChannel.messages.filter(isBroadcast).length, 0, 'another channel does not get it')
    t.equal(onB.messages.filter(isBroadcast).length, 1, 'exactly once')
  })
})

t.test('whatever else is published on a workspace\'s bus channel is dropped, never forwarded', async t => {
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_URL, JWT_SECRET: TEST_SECRET }
  const server = await spawnServer(t, { env })
  const owner = await registerUser(server.base)
  const workspaceId = await createWorkspace(server.base, owner)
  const client = await connect(t, server.base, { token: owner.token })
  await client.subscribe(workspaceId)
  await client.next(m => m.type === 'presence.members', 'presence.members')
  const before = client.messages.length

  const redis = new Redis(REDIS_URL)
  t.teardown(() => { redis.disconnect() })
  const garbage = [
    'not json',
    '{}',
    JSON.stringify({ t: 'broadcast', frame: 123, fromClient: 'x' }),
    JSON.stringify({ t: 'changes', changes: 'x' }),
    JSON.stringify({ t: 'changes', changes: [] }),
    JSON.stringify({ t: 'changes', changes: [{ revision: 'one', op: 'create' }] }),
    JSON.stringify({ t: 'access', userIds: [1] }),
    'x'.repeat(1024 * 1024)
  ]
  for (const message of garbage) t.equal(await redis.publish(`wb:workspace:${workspaceId}`, message), 1, 'the server receives it')

  const { revision } = expectStatus<WriteResult>(await request(server.base, 'PUT', `/v1/workspaces/${workspaceId}/files/after.txt`, { token: owner.token, payload: { content: 'x' } }), 201, `PUT /v1/workspaces/${workspaceId}/files/after.txt`)
  await client.untilRevision(workspaceId, revision)
  await sleep(200)
  t.same(client.messages.slice(before).map(m => [m.type, m.revision]), [['event', 1]], 'only the real change reached the client')
  t.equal((expectStatus<{ status: string }>(await request(server.base, 'GET', '/health'), 200, 'GET /health')).status, 'ok', 'the server is still up')
  t.equal(server.output().match(/malformed bus message dropped/g)?.length, garbage.length, 'each one was logged')
})
