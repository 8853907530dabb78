import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createTestDatabase, createWorkspace, dbClient, listen, registerUser, sleep, type TestUser } from '../helpers/app.js'
import { expectStatus, request } from '../helpers/http.js'
import { connect, type Client, type Closed } from '../helpers/ws.js'

/**
 * Hardening, finding 2: a socket's inbox (messages waiting while one is handled) is bounded by
 * WS_MAX_QUEUED_MESSAGES and WS_MAX_QUEUED_BYTES, and a replay that waits for a client that does
 * not read gives up after WS_REPLAY_TIMEOUT_MS; both close with 1013.
 */

const calm = { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }
const MAX_MESSAGES = 5
const MAX_BYTES = 4096

/** Polls `check` every 10 ms until it is true; fails after `ms`. */
async function until (check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Waits until the server has received `n` more WebSocket messages than `before` (every one decided on as it came). */
async function received (app: FastifyInstance, before: number, n: number): Promise<void> {
  await until(async () => (await app.metrics.totals()).wsMessagesIn >= before + n, `${n} messages at the server`)
}
/** How the socket closed, or 'still open' after `ms`: a regression fails here, not at the runner's timeout. */
async function closedWithin (c: Client, ms = 10_000): Promise<Closed | 'still open'> {
  return await Promise.race([c.closed, sleep(ms).then(() => 'still open' as const)])
}
const messagesIn = async (app: FastifyInstance): Promise<number> => (await app.metrics.totals()).wsMessagesIn

/** A message of exactly `bytes` bytes: a ping padded out. */
function pingOf (bytes: number): string {
  const bare = JSON.stringify({ type: 'ping', pad: '' })
  return JSON.stringify({ type: 'ping', pad: 'x'.repeat(bytes - bare.length) })
}

t.test('the inbox bound: messages and bytes waiting behind a slow one', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { ...calm, DATABASE_URL: url, WS_MAX_QUEUED_MESSAGES: String(MAX_MESSAGES), WS_MAX_QUEUED_BYTES: String(MAX_BYTES) })
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  const pg = await dbClient(t, url)

  /** Holds the workspace's row lock, so a write over the socket waits for it: the inbox fills behind it. */
  async function stall (): Promise<() => Promise<void>> {
    await pg.query('BEGIN')
    await pg.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [workspaceId])
    return async () => { await pg.query('COMMIT') }
  }
  /** A socket with nothing in hand: `connected` goes out before the connect is recorded, which messages wait for. */
  const idle = async (): Promise<Client> => {
    const c = await connect(t, base, { token: user.token })
    await c.request({ type: 'ping' }, ['pong'])
    return c
  }
  const write = (c: Client, path: string): void => { c.send({ type: 'rpc', id: path, method: 'files.write', params: { workspaceId, path, content: path } }) }
  const exists = async (u: TestUser, path: string): Promise<boolean> =>
    (await request(app, 'GET', `/v1/workspaces/${workspaceId}/files${path}`, { token: u.token })).statusCode === 200

  t.test(`${MAX_MESSAGES} messages waiting: all handled, in order, the socket stays open`, async t => {
    const c = await idle()
    const release = await stall()
    const before = await messagesIn(app)
    write(c, '/at-0')
    for (let i = 1; i <= MAX_MESSAGES; i++) write(c, `/at-${i}`)
    await received(app, before, MAX_MESSAGES + 1)
    t.notOk(c.isClosed, 'not closed while they wait')
    await release()
    await c.until(() => c.messages.filter(m => m.type === 'rpc.result').length === MAX_MESSAGES + 1 ? true : undefined, 'every answer')
    t.same(c.messages.filter(m => m.type === 'rpc.result').map(m => m.id), Array.from({ length: MAX_MESSAGES + 1 }, (_, i) => `/at-${i}`), 'answered in order')
    t.notOk(c.isClosed)
  })

  t.test(`${MAX_MESSAGES + 1} messages waiting: closed with 1013; none of the waiting ones is handled`, async t => {
    const c = await idle()
    const release = await stall()
    write(c, '/past-0')
    for (let i = 1; i <= MAX_MESSAGES + 1; i++) write(c, `/past-${i}`)
    t.match(await closedWithin(c), { code: 1013, reason: /too many messages waiting/ })
    await release()
    // The write that was in hand when the inbox overflowed completes; nothing that waited does.
    await until(async () => await exists(user, '/past-0'), 'the write in hand')
    for (let i = 1; i <= MAX_MESSAGES + 1; i++) t.notOk(await exists(user, `/past-${i}`), `/past-${i} never written`)
    t.same(c.messages.filter(m => m.type === 'rpc.result'), [], 'no answer after the close')
    // The user is not locked out: a new socket works.
    const again = await connect(t, base, { token: user.token })
    t.match(await again.rpc('files.read', { workspaceId, path: '/past-0' }), { type: 'rpc.result' })
  })

  t.test(`${MAX_BYTES} bytes waiting: handled; one byte more: closed with 1013`, async t => {
    const at = await idle()
    let release = await stall()
    let before = await messagesIn(app)
    write(at, '/bytes-at')
    at.send(pingOf(MAX_BYTES / 2))
    at.send(pingOf(MAX_BYTES / 2))
    await received(app, before, 3)
    t.notOk(at.isClosed, `${MAX_BYTES} bytes wait`)
    await release()
    await at.until(() => at.messages.filter(m => m.type === 'pong').length === 3 ? true : undefined, 'both pongs', 10_000)
    t.ok(await exists(user, '/bytes-at'))
    t.notOk(at.isClosed)

    const past = await idle()
    release = await stall()
    before = await messagesIn(app)
    write(past, '/bytes-past')
    past.send(pingOf(MAX_BYTES / 2))
    past.send(pingOf(MAX_BYTES / 2))
    await received(app, before, 3)
    t.notOk(past.isClosed, 'still open at the bound')
    past.send(pingOf(1 + JSON.stringify({ type: 'ping', pad: '' }).length))
    t.match(await closedWithin(past), { code: 1013 }, `${MAX_BYTES + 1}+ bytes: 1013 though only 3 messages wait`)
    await release()
    t.equal(past.messages.filter(m => m.type === 'pong').length, 1, 'the waiting pings were never answered (the one pong is idle()\'s)')
  })
})

t.test('a replay waiting for a client that does not read', async t => {
  // A file larger than the kernel's socket buffers hold: once answered to a client that does not
  // read, the server's send buffer stays over WS_MAX_BUFFERED_BYTES / 2, so a replay waits.
  const BIG = 9 * 2 ** 20
  const setup = async (env: Record<string, string>): Promise<{ app: FastifyInstance, base: string, user: TestUser, workspaceId: string }> => {
    const app = await build(t, { ...calm, WS_MAX_BUFFERED_BYTES: '1024', WS_HEARTBEAT_MS: '600000', WS_MAX_QUEUED_MESSAGES: String(MAX_MESSAGES), ...env })
    const base = await listen(app)
    const user = await registerUser(app)
    const workspaceId = await createWorkspace(app, user)
    expectStatus(await request(app, 'PUT', `/v1/workspaces/${workspaceId}/files/big.txt`, { token: user.token, payload: { content: 'y'.repeat(BIG) } }), 201, 'PUT big.txt')
    expectStatus(await request(app, 'PUT', `/v1/workspaces/${workspaceId}/files/small.txt`, { token: user.token, payload: { content: 's' } }), 201, 'PUT small.txt')
    return { app, base, user, workspaceId }
  }
  const closing = (app: FastifyInstance): boolean => [...app.websocketServer.clients].some(ws => ws.readyState === ws.CLOSING)
  /**
   * A client that stops reading, asks for the big file, then subscribes with a replay; resolves
   * once the answer sits in the server's send buffer, so the subscribe is in hand and waiting.
   */
  const stuck = async (app: FastifyInstance, base: string, user: TestUser, workspaceId: string): Promise<Client> => {
    const c = await connect(t, base, { token: user.token })
    c.socket.pause()
    c.send({ type: 'rpc', id: 'big', method: 'files.read', params: { workspaceId, path: '/big.txt' } })
    c.send({ type: 'subscribe', channel: `workspace:${workspaceId}`, since: 0 })
    await until(() => [...app.websocketServer.clients].some(ws => ws.bufferedAmount > 1024), 'the answer in the send buffer')
    return c
  }

  t.test('past WS_REPLAY_TIMEOUT_MS: closed with 1013', async t => {
    const { app, base, user, workspaceId } = await setup({ WS_REPLAY_TIMEOUT_MS: '300' })
    const c = await stuck(app, base, user, workspaceId)
    await until(() => closing(app), 'the server to close the socket')
    c.socket.resume()
    t.match(await closedWithin(c), { code: 1013, reason: /replay timed out/ })
    t.match(c.messages.find(m => m.type === 'rpc.result'), { id: 'big' }, 'what was sent before still arrived')
    t.notOk(c.messages.some(m => m.type === 'subscribed'), 'never subscribed')
  })

  t.test(`while it waits: ${MAX_MESSAGES} more messages wait with it; one more closes the socket with 1013`, async t => {
    const { app, base, user, workspaceId } = await setup({ WS_REPLAY_TIMEOUT_MS: '60000' })
    const at = await stuck(app, base, user, workspaceId)
    let before = await messagesIn(app)
    for (let i = 0; i < MAX_MESSAGES; i++) at.send({ type: 'ping' })
    await received(app, before, MAX_MESSAGES)
    t.notOk(closing(app), 'not closed at the bound')
    at.socket.resume()
    await at.until(() => at.messages.filter(m => m.type === 'pong').length === MAX_MESSAGES ? true : undefined, 'the pongs')
    t.match(at.messages.find(m => m.type === 'subscribed'), { type: 'subscribed', revision: 2 }, 'reading again, the replay went through')
    t.same(at.revisions(workspaceId), [1, 2])
    t.notOk(at.isClosed)

    const past = await stuck(app, base, user, workspaceId)
    before = await messagesIn(app)
    for (let i = 0; i <= MAX_MESSAGES; i++) past.send({ type: 'ping' })
    await received(app, before, MAX_MESSAGES + 1)
    await until(() => closing(app), 'the server to close the socket')
    past.socket.resume()
    t.match(await closedWithin(past), { code: 1013, reason: /too many messages waiting/ })
    t.same(past.messages.filter(m => m.type === 'pong' || m.type === 'subscribed'), [], 'nothing that waited was handled')
  })
})
