import t from 'tap'
import WebSocket from 'ws'
import { WorkbenchClient, WorkspaceMirror } from '../../client/src/index.js'
import { build, createTestDatabase, listen, PASSWORD, REDIS_URL, sleep, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { privateRedis } from '../helpers/faults.js'
import { startProxy } from '../helpers/proxy.js'

/**
 * Server processes on one PostgreSQL database and one Redis, behind a proxy (one address, as a
 * load balancer gives): the SDK follows a workspace written through another instance, fails over
 * to that instance, and resumes on a freshly started process after the one it was on stops,
 * every change delivered once and in order, and its mirror equal to /tree.
 */

t.test('resume across instances and a server restart', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const env = { DATABASE_URL, REDIS_URL, JWT_SECRET: TEST_SECRET, WS_HEARTBEAT_MS: '2000' }
  const [a, b] = await Promise.all([spawnServer(t, { env }), spawnServer(t, { env })])
  const proxy = await startProxy(t, a.port)
  const email = `sdk-resume-${Math.random().toString(36).slice(2)}@example.com`
  let writer = new WorkbenchClient({ baseUrl: b.base })
  await writer.auth.register({ email, password: PASSWORD })
  const ws = await writer.workspaces.create('resume')
  const client = new WorkbenchClient({ baseUrl: proxy.base, WebSocket, live: { reconnectDelayMs: 100, maxReconnectDelayMs: 1_000 } })
  await client.auth.login({ email, password: PASSWORD })
  t.teardown(() => { client.live.close() })
  const mirror = await WorkspaceMirror.open(client, ws.id)
  const seen: number[] = []
  mirror.onChange(u => { if (u.type === 'change') seen.push(u.revision) })
  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

  const writes = async (from: number, to: number): Promise<void> => {
    for (let i = from; i <= to; i++) {
      if (i % 5 === 0) await writer.operations.apply(ws.id, { type: 'move', path: `/f/${i - 1}.txt`, newPath: `/g/${i}.txt` })
      else await writer.files.write(ws.id, `/f/${i}.txt`, { content: String(i) })
    }
  }
  const matchesTree = async (label: string): Promise<void> => {
    const tree = await writer.files.treeAll(ws.id)
    await mirror.reached(tree.revision, 30_000)
    t.same(mirror.list(), tree.entries, `${label}: the mirror equals /tree at ${tree.revision}`)
  }

  // On A, following writes made through B (Redis carries them).
  await writes(1, 20)
  await mirror.reached(20, 30_000)
  t.same(seen, range(1, 20), 'on A: the writes made through B, in order')
  await matchesTree('on A')

  // Fail over to B while writes go on.
  proxy.setTarget(b.port)
  proxy.dropAll()
  await writes(21, 40)
  await mirror.reached(40, 30_000)
  t.same(seen, range(1, 40), 'moved to B: nothing lost, nothing twice')
  t.ok(client.live.connections >= 2)
  await matchesTree('on B')

  // A restart: a new process takes over, and the one the client is on (B) shuts down.
  await a.stop()
  const c = await spawnServer(t, { env })
  proxy.setTarget(c.port)
  writer = new WorkbenchClient({ baseUrl: c.base, tokens: writer.tokens })
  const before = client.live.connections
  await b.stop()
  await writes(41, 60)
  await mirror.reached(60, 30_000)
  t.same(seen, range(1, 60), 'after B stopped, on the new process: nothing lost, nothing twice')
  t.ok(client.live.connections > before, 'it reconnected')
  await matchesTree('after the restart')
  mirror.close()
})

/**
 * Redis stops for real (killed) and starts again, empty, while the SDK is subscribed: it
 * reconnects during the outage, and resumes with every change once and in order, its mirror equal
 * to /tree, and its presence members rebuilt. A Redis of the test's own: the suites running at the
 * same time share the machine's.
 */
t.test('resume across a Redis restart', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const redis = await privateRedis(t)
  const app = await build(t, { DATABASE_URL, REDIS_URL: redis.url, WS_HEARTBEAT_MS: '1000' })
  const base = await listen(app)
  const email = `sdk-redis-${Math.random().toString(36).slice(2)}@example.com`
  const writer = new WorkbenchClient({ baseUrl: base })
  await writer.auth.register({ email, password: PASSWORD })
  const ws = await writer.workspaces.create('redis restart')
  const client = new WorkbenchClient({ baseUrl: base, WebSocket, live: { reconnectDelayMs: 100, maxReconnectDelayMs: 500 } })
  await client.auth.login({ email, password: PASSWORD })
  const peer = new WorkbenchClient({ baseUrl: base, WebSocket, live: { reconnectDelayMs: 100, maxReconnectDelayMs: 500 } })
  await peer.auth.login({ email, password: PASSWORD })
  t.teardown(() => { client.live.close(); peer.live.close() })
  const mirror = await WorkspaceMirror.open(client, ws.id)
  const seen: number[] = []
  mirror.onChange(u => { if (u.type === 'change') seen.push(u.revision) })
  const sub = peer.live.subscribe(ws.id, { presence: { name: 'peer' } }, () => {})
  await sub.ready
  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
  const writes = async (from: number, to: number): Promise<void> => {
    for (let i = from; i <= to; i++) await writer.files.write(ws.id, `/r/${i}.txt`, { content: String(i) })
  }
  await writes(1, 10)
  await mirror.reached(10, 30_000)

  // The outage: Redis is down for about two seconds.
  await redis.stop()
  t.notOk(await redis.answers(), 'Redis is down')
  client.live.reconnectNow()
  peer.live.reconnectNow()
  await writes(11, 20)
  await sleep(1_000)
  await redis.start()
  t.ok(await redis.answers(), 'Redis is up again')
  await writes(21, 30)
  await mirror.reached(30, 30_000)
  t.same(seen, range(1, 30), 'every change once, in order, across the outage')
  t.ok(client.live.connections >= 2, 'the client reconnected')
  const tree = await writer.files.treeAll(ws.id)
  await mirror.reached(tree.revision, 30_000)
  t.same(mirror.list(), tree.entries, `the mirror equals /tree at ${tree.revision}`)
  // Presence after the restart (the hash was lost): the peer's own entry is back, nothing else.
  const deadline = Date.now() + 10_000
  while (!(sub.presence.members.size === 1 && sub.presence.members.has(peer.sessionId ?? '')) && Date.now() < deadline) await sleep(50)
  t.same([...sub.presence.members.keys()], [peer.sessionId], 'the presence members are rebuilt: the peer itself')
  mirror.close()
})
