import t from 'tap'
import { privateRedis } from '../helpers/faults.js'
import { createTestDatabase, createWorkspace, registerUser, sleep, spawnServer, TEST_SECRET, type TestUser } from '../helpers/app.js'
import { expectStatus, request, type BatchResult, type Workspace, type WriteResult } from '../helpers/http.js'
import { connect, range } from '../helpers/ws.js'

/**
 * Real faults against real server processes: Redis restarted under a stream of writes, and a
 * client that stops reading.
 */

async function put (base: string, user: TestUser, workspaceId: string, path: string): Promise<number> {
  const res = await request(base, 'PUT', `/v1/workspaces/${workspaceId}/files${path}`, { token: user.token, payload: { content: path } })
  return expectStatus<WriteResult>(res, 201, `write ${path}`).revision
}

t.test('Redis restarted during a stream of writes: subscribers still get every revision, in order', async t => {
  // A Redis of this test's own: restarting it disturbs no other test file.
  const redis = await privateRedis(t)
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_URL: redis.url, JWT_SECRET: TEST_SECRET }
  const [a, b] = await Promise.all([spawnServer(t, { env }), spawnServer(t, { env })])
  const user = await registerUser(a.base)
  const workspaceId = await createWorkspace(a.base, user)
  const onA = await connect(t, a.base, { token: user.token })
  const onB = await connect(t, b.base, { token: user.token })
  await onA.subscribe(workspaceId)
  await onB.subscribe(workspaceId)

  const state = { running: true }
  let failed = 0
  const writers = Promise.all(range(1, 4).map(async w => {
    let last = 0
    for (let i = 0; state.running; i++) {
      try {
        last = Math.max(last, await put(a.base, user, workspaceId, `/w${w}/f${i}.txt`))
      } catch {
        failed++
      }
    }
    return last
  }))
  await onB.untilRevision(workspaceId, 50)
  await redis.stop()
  const downAt = onB.revisions(workspaceId).at(-1) ?? 0
  t.notOk(await redis.answers(), 'Redis is down')
  const headWhenDown = (expectStatus<Workspace>(await request(a.base, 'GET', `/v1/workspaces/${workspaceId}`, { token: user.token }), 200, `GET /v1/workspaces/${workspaceId}`)).revision
  await sleep(1_500)
  const headBeforeRestart = (expectStatus<Workspace>(await request(a.base, 'GET', `/v1/workspaces/${workspaceId}`, { token: user.token }), 200, `GET /v1/workspaces/${workspaceId}`)).revision
  t.ok(headBeforeRestart > headWhenDown + 10, `writes went on while Redis was down (${headWhenDown} → ${headBeforeRestart})`)
  await redis.start()
  await sleep(1_500)
  state.running = false
  const last = Math.max(...await writers)
  t.equal(failed, 0, 'no write failed because Redis was down')
  t.ok(last > headBeforeRestart, 'writes went on after the restart')

  for (const [name, client] of [['A', onA], ['B', onB]] as const) {
    const revs = await client.untilRevision(workspaceId, last, 30_000)
    t.same(revs, range(1, last), `${name}: every revision 1..${last} once, in order (down at ${downAt})`)
  }

  // Pub/sub is back, not just the database head check (every 2 s): five writes in a row reach B quickly.
  const deadline = Date.now() + 20_000
  let fast = 0
  while (fast < 5 && Date.now() < deadline) {
    const start = Date.now()
    const revision = await put(a.base, user, workspaceId, `/after/f${start}.txt`)
    await onB.untilRevision(workspaceId, revision, 5_000)
    fast = Date.now() - start < 250 ? fast + 1 : 0
  }
  t.equal(fast, 5, 'live events flow through Redis again after the restart')
  const final = onB.revisions(workspaceId)
  t.same(final, range(1, final.at(-1) ?? 0), 'still no gap and no duplicate')
})

/** A path of about 1,000 bytes, so each change event is large (a copy's names both paths). */
const longPath = (tag: string): string => `/${'a'.repeat(240)}/${'b'.repeat(240)}/${'c'.repeat(240)}/${'d'.repeat(240)}-${tag}.txt`

t.test('a client that stops reading is cut off at WS_MAX_BUFFERED_BYTES; the others get everything; memory stays bounded', async t => {
  const BOUND = 64 * 1024
  const server = await spawnServer(t, {
    env: {
      DATABASE_URL: await createTestDatabase(t),
      JWT_SECRET: TEST_SECRET,
      WS_MAX_BUFFERED_BYTES: String(BOUND),
      // The heartbeat would drop a client that stops reading too; keep it out of the way.
      WS_HEARTBEAT_MS: '600000'
    }
  })
  const user = await registerUser(server.base)
  const workspaceId = await createWorkspace(server.base, user)
  const slow = await connect(t, server.base, { token: user.token })
  const reader = await connect(t, server.base, { token: user.token })
  await slow.subscribe(workspaceId)
  await reader.subscribe(workspaceId)
  expectStatus(await request(server.base, 'PUT', `/v1/workspaces/${workspaceId}/files${longPath('source')}`, { token: user.token, payload: { content: 'x' } }), 201, `PUT /v1/workspaces/${workspaceId}/files${longPath('source')}`)

  // Each batch is 1,000 copies: 1,000 change events of about 2.4 KB.
  const batch = async (n: number): Promise<number> => {
    const operations = range(1, 1000).map(i => ({ type: 'copy', path: longPath('source'), newPath: longPath(`${n}-${i}`) }))
    return (expectStatus<BatchResult>(await request(server.base, 'POST', `/v1/workspaces/${workspaceId}/operations/batch`, { token: user.token, payload: { operations } }), 200, `POST /v1/workspaces/${workspaceId}/operations/batch`)).revision
  }
  slow.socket.pause()
  const BATCHES = 8
  let last = 0
  for (let n = 1; n <= BATCHES; n++) {
    last = await batch(n)
    await reader.untilRevision(workspaceId, last)
  }
  const eventBytes = reader.messages.filter(m => m.type === 'event').reduce((sum, m) => sum + JSON.stringify(m).length, 0)
  t.same(reader.revisions(workspaceId), range(1, last), `the reading client got all ${last} events (${(eventBytes / 2 ** 20).toFixed(1)} MiB)`)

  // Reading again, the slow client finds the connection closed by the server, part way.
  slow.socket.resume()
  const closed = await Promise.race([slow.closed, sleep(15_000).then(() => undefined)])
  t.ok(closed !== undefined, 'the server closed the slow client')
  // The close frame (1013) sits behind the data the client never read, and the server cuts the
  // connection 2 s after closing: the client sees 1013 if the frame made it into the kernel
  // buffers before that, else 1006.
  t.ok(closed !== undefined && [1013, 1006].includes(closed.code), `closed with ${String(closed?.code)}`)
  const got = slow.revisions(workspaceId)
  t.ok(got.length < last, `the slow client was cut off part way (${got.length} of ${last} events)`)
  t.same(got, range(1, got.length), 'what it got is a gap-free prefix')

  // It resumes with since, as the contract says, and gets the rest: a replay far larger than the
  // bound goes at the pace the client reads instead of tripping it.
  const again = await connect(t, server.base, { token: user.token })
  const since = got.at(-1) ?? 0
  t.match(await again.subscribe(workspaceId, since, 60_000), { type: 'subscribed', revision: last })
  t.same(again.revisions(workspaceId), range(since + 1, last), 'resumed with since: the rest, in order')
  t.notOk(again.isClosed, 'the resumed client is still connected')
  const fromStart = await connect(t, server.base, { token: user.token })
  t.match(await fromStart.subscribe(workspaceId, 0, 60_000), { type: 'subscribed', revision: last })
  t.same(fromStart.revisions(workspaceId), range(1, last), `a replay of all ${last} events (${(eventBytes / 2 ** 20).toFixed(1)} MiB) goes through too`)
  t.notOk(fromStart.isClosed, 'and that client is still connected')

  t.test('memory stays bounded: a client asking for large files and never reading them', async t => {
    // 4 MiB per answer, 60 questions: 240 MiB would pile up in the server if nothing bounded it.
    const SIZE = 4 * 2 ** 20
    const QUESTIONS = 60
    expectStatus(await request(server.base, 'PUT', `/v1/workspaces/${workspaceId}/files/big.txt`, { token: user.token, payload: { content: 'y'.repeat(SIZE) } }), 201, `PUT /v1/workspaces/${workspaceId}/files/big.txt`)
    // Warm up: the same reads, answered to a client that reads them.
    for (let i = 0; i < 3; i++) t.equal(((await reader.rpc('files.read', { workspaceId, path: '/big.txt' })).result as { size: number }).size, SIZE)
    const baseline = await server.rss()
    const hog = await connect(t, server.base, { token: user.token })
    hog.socket.pause()
    for (let i = 0; i < QUESTIONS; i++) hog.send({ type: 'rpc', id: i, method: 'files.read', params: { workspaceId, path: '/big.txt' } })
    let peak = baseline
    for (let i = 0; i < 60; i++) {
      peak = Math.max(peak, await server.rss())
      await sleep(50)
    }
    const growth = peak - baseline
    t.ok(growth < QUESTIONS * SIZE / 3, `server RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB (unbounded: ${QUESTIONS * SIZE / 2 ** 20} MiB)`)
    hog.socket.resume()
    const hogClosed = await Promise.race([hog.closed, sleep(15_000).then(() => undefined)])
    t.ok(hogClosed !== undefined && [1013, 1006].includes(hogClosed.code), `the server closed it (${String(hogClosed?.code)})`)
    const answers = hog.messages.filter(m => m.type === 'rpc.result').length
    t.ok(answers < QUESTIONS, `cut off after ${answers} of ${QUESTIONS} answers`)
    // The others are unaffected.
    const next = await batch(99)
    t.same(await reader.untilRevision(workspaceId, next), range(1, next), 'the reading client still gets everything')
    t.equal(await Promise.race([server.exited.then(() => 'exited'), sleep(10).then(() => 'running')]), 'running', 'the server is still up')
  })
})
