import { Redis } from 'ioredis'
import t from 'tap'
import { build, createWorkspace, listen, REDIS_URL, registerUser, sleep, type TestUser } from '../helpers/app.js'
import { expectStatus, request } from '../helpers/http.js'
import { connect, type Client, type Msg } from '../helpers/ws.js'

/**
 * Presence (docs/api.md, "Presence"): presence.set, the members after `subscribed`, join/update/
 * leave to every subscriber, the limits, and leave for sockets that go in every way.
 */

const presenceOf = (c: Client, from = 0): Msg[] => c.messages.slice(from).filter(m => m.type === 'presence')

async function subscribeWithMembers (c: Client, workspaceId: string): Promise<Msg> {
  const from = c.messages.length
  const subscribed = await c.subscribe(workspaceId)
  if (subscribed.type !== 'subscribed') throw new Error(JSON.stringify(subscribed))
  const i = c.messages.indexOf(subscribed)
  const members = await c.next(m => m.type === 'presence.members', 'presence.members', from)
  if (c.messages.indexOf(members) !== i + 1) throw new Error('presence.members did not follow subscribed at once')
  return members
}

async function addViewer (base: string, owner: TestUser, workspaceId: string, user: TestUser): Promise<void> {
  expectStatus(await request(base, 'PUT', `/v1/workspaces/${workspaceId}/members`, { token: owner.token, payload: { email: user.email, role: 'viewer' } }), 200, 'add member')
}

for (const mode of ['embedded', 'redis'] as const) {
  t.test(`presence (${mode})`, async t => {
    const app = await build(t, { WS_HEARTBEAT_MS: '400', PRESENCE_UPDATES_PER_SECOND: '5', ...(mode === 'redis' ? { REDIS_URL } : {}) })
    const base = await listen(app)
    const owner = await registerUser(app)
    const viewer = await registerUser(app)
    const stranger = await registerUser(app)
    const workspaceId = await createWorkspace(app, owner)
    await addViewer(base, owner, workspaceId, viewer)
    const channel = `workspace:${workspaceId}`

    t.test('members after subscribed; join, update and leave to every subscriber, self included', async t => {
      const a = await connect(t, base, { token: owner.token })
      t.same((await subscribeWithMembers(a, workspaceId)).members, [], 'nobody is here yet')
      a.send({ type: 'presence.set', channel, state: { file: '/a.txt' } })
      const selfJoin = await a.next(m => m.type === 'presence', 'own join')
      t.same(selfJoin, { type: 'presence', channel, kind: 'join', sessionId: owner.sessionId, userId: owner.id, state: { file: '/a.txt' } })

      const b = await connect(t, base, { token: viewer.token })
      const members = await subscribeWithMembers(b, workspaceId)
      t.same(members, { type: 'presence.members', channel, members: [{ sessionId: owner.sessionId, userId: owner.id, state: { file: '/a.txt' } }] })
      t.equal(presenceOf(b).length, 0, 'a viewer (read access) that has not set presence is not a member')

      const fromA = a.messages.length
      b.send({ type: 'presence.set', channel, state: { file: '/b.txt', name: 'Bee' } })
      t.same(await a.next(m => m.type === 'presence', 'b joins', fromA), { type: 'presence', channel, kind: 'join', sessionId: viewer.sessionId, userId: viewer.id, state: { file: '/b.txt', name: 'Bee' } })

      const fromB = b.messages.length
      a.send({ type: 'presence.set', channel, state: { file: '/c.txt' } })
      t.same(await b.next(m => m.type === 'presence' && m.sessionId === owner.sessionId, 'a updates', fromB), { type: 'presence', channel, kind: 'update', sessionId: owner.sessionId, userId: owner.id, state: { file: '/c.txt' } })

      // The same state again is no event.
      const quiet = b.messages.length
      await sleep(300)
      a.send({ type: 'presence.set', channel, state: { file: '/c.txt' } })
      await sleep(500)
      t.same(presenceOf(b, quiet), [], 'an unchanged state is not announced')

      const beforeLeave = a.messages.length
      await b.request({ type: 'unsubscribe', channel }, ['unsubscribed'])
      t.same(await a.next(m => m.type === 'presence', 'b leaves on unsubscribe', beforeLeave), { type: 'presence', channel, kind: 'leave', sessionId: viewer.sessionId, userId: viewer.id, state: { file: '/b.txt', name: 'Bee' } })

      // A third socket sees only a.
      const c = await connect(t, base, { token: viewer.token })
      t.same((await subscribeWithMembers(c, workspaceId)).members, [{ sessionId: owner.sessionId, userId: owner.id, state: { file: '/c.txt' } }])
      const beforeClose = c.messages.length
      a.close()
      t.match(await c.next(m => m.type === 'presence', 'a leaves on close', beforeClose), { kind: 'leave', sessionId: owner.sessionId })
      const d = await connect(t, base, { token: viewer.token })
      t.same((await subscribeWithMembers(d, workspaceId)).members, [], 'no ghost after leaving')
      c.close()
      d.close()
    })

    t.test('limits: size and depth at and past them, not subscribed; nothing announced after a refusal', async t => {
      const a = await connect(t, base, { token: owner.token })
      const watcher = await connect(t, base, { token: viewer.token })
      await subscribeWithMembers(watcher, workspaceId)
      const notYet = await a.request({ type: 'presence.set', channel, state: { x: 1 } }, ['error'])
      t.match(notYet, { type: 'error', code: 'NOT_SUBSCRIBED', channel })
      await subscribeWithMembers(a, workspaceId)

      // {"s":"…"} is 8 bytes around the string
      const atLimit = { s: 'x'.repeat(2048 - 8) }
      t.equal(Buffer.byteLength(JSON.stringify(atLimit)), 2048)
      const from = watcher.messages.length
      a.send({ type: 'presence.set', channel, state: atLimit })
      t.match(await watcher.next(m => m.type === 'presence', 'join at the size limit', from), { kind: 'join', state: atLimit })
      await sleep(250)

      const past = { s: 'x'.repeat(2048 - 7) }
      const tooBig = await a.request({ type: 'presence.set', channel, state: past }, ['error', 'presence'])
      t.match(tooBig, { type: 'error', code: 'PRESENCE_TOO_LARGE', channel, message: /2049 bytes; the limit is 2048/ })

      const deep4 = { a: { b: { c: { d: 1 } } } }
      const deep5 = { a: { b: { c: { d: { e: 1 } } } } }
      const tooDeep = await a.request({ type: 'presence.set', channel, state: deep5 }, ['error', 'presence'])
      t.match(tooDeep, { type: 'error', code: 'PRESENCE_TOO_LARGE', channel, message: /nested 5 deep; the limit is 4/ })
      const wideDeep = await a.request({ type: 'presence.set', channel, state: { l: [[[[[[[[1]]]]]]]] } }, ['error', 'presence'])
      t.match(wideDeep, { code: 'PRESENCE_TOO_LARGE' })
      const notObject = await a.request({ type: 'presence.set', channel, state: [1] }, ['error'])
      t.match(notObject, { type: 'error', code: 'VALIDATION_FAILED' })
      await sleep(300)
      t.same(presenceOf(watcher, from).map(m => m.kind), ['join'], 'the refused states were never announced')

      const before = watcher.messages.length
      a.send({ type: 'presence.set', channel, state: deep4 })
      t.match(await watcher.next(m => m.type === 'presence', 'update at the depth limit', before), { kind: 'update', state: deep4 })
      a.close()
      watcher.close()
    })

    t.test('rate limit: sets past PRESENCE_UPDATES_PER_SECOND are coalesced, the newest wins', async t => {
      const a = await connect(t, base, { token: owner.token })
      const watcher = await connect(t, base, { token: viewer.token })
      await subscribeWithMembers(watcher, workspaceId)
      await subscribeWithMembers(a, workspaceId)
      const from = watcher.messages.length
      for (let i = 1; i <= 30; i++) a.send({ type: 'presence.set', channel, state: { i } })
      await watcher.next(m => m.type === 'presence' && (m.state as { i: number }).i === 30, 'the last state', from)
      await sleep(600)
      const seen = presenceOf(watcher, from).map(m => (m.state as { i: number }).i)
      t.same(seen, [1, 30], `the first at once, the newest at the end of the interval (${JSON.stringify(seen)})`)
      t.notOk(a.messages.some(m => m.type === 'error'), 'no error: coalesced, not refused')
      a.close()
      watcher.close()
    })

    t.test('several sockets of one session are one member; it leaves with the last', async t => {
      const watcher = await connect(t, base, { token: viewer.token })
      await subscribeWithMembers(watcher, workspaceId)
      const one = await connect(t, base, { token: owner.token })
      const two = await connect(t, base, { token: owner.token })
      await subscribeWithMembers(one, workspaceId)
      await subscribeWithMembers(two, workspaceId)
      const from = watcher.messages.length
      one.send({ type: 'presence.set', channel, state: { tab: 1 } })
      await watcher.next(m => m.type === 'presence' && m.kind === 'join', 'join', from)
      two.send({ type: 'presence.set', channel, state: { tab: 2 } })
      await watcher.next(m => m.type === 'presence' && m.kind === 'update', 'update to the newest', from)
      two.close()
      const back = await watcher.next(m => m.type === 'presence' && m.kind === 'update' && (m.state as { tab: number }).tab === 1, 'back to the remaining socket\'s state', from)
      t.match(back, { sessionId: owner.sessionId })
      one.close()
      t.match(await watcher.next(m => m.type === 'presence' && m.kind === 'leave', 'leave with the last socket', from), { sessionId: owner.sessionId, state: { tab: 1 } })
      t.same(presenceOf(watcher, from).map(m => m.kind), ['join', 'update', 'update', 'leave'])
      watcher.close()
    })

    t.test('a socket that stops answering pings leaves within a heartbeat of being dropped', async t => {
      const watcher = await connect(t, base, { token: viewer.token })
      await subscribeWithMembers(watcher, workspaceId)
      const silent = await connect(t, base, { token: owner.token, autoPong: false })
      let pings = 0
      silent.ws.on('ping', () => { pings++ })
      await subscribeWithMembers(silent, workspaceId)
      const from = watcher.messages.length
      silent.send({ type: 'presence.set', channel, state: { ghost: false } })
      await watcher.next(m => m.type === 'presence' && m.kind === 'join', 'join', from)
      const leave = await watcher.next(m => m.type === 'presence' && m.kind === 'leave', 'leave of the silent socket', from, 5_000)
      t.match(leave, { sessionId: owner.sessionId })
      // Dropped at the heartbeat after its first unanswered ping (counted in pings rather than
      // milliseconds: a loaded machine delays the heartbeat's timer, not its count).
      t.ok(pings <= 1, `dropped after ${pings} unanswered ping(s)`)
      watcher.close()
    })

    t.test('no presence without read access', async t => {
      const s = await connect(t, base, { token: stranger.token })
      const answer = await s.subscribe(workspaceId)
      t.match(answer, { type: 'error', code: 'WORKSPACE_NOT_FOUND' })
      t.notOk(s.messages.some(m => m.type === 'presence.members'))
      t.match(await s.request({ type: 'presence.set', channel, state: {} }, ['error']), { code: 'NOT_SUBSCRIBED' })
      s.close()
    })

    if (mode === 'redis') {
      t.test('what no bus message announced is found in the hash: an entry appears, expires, is deleted', async t => {
        const redis = new Redis(REDIS_URL)
        t.teardown(() => { redis.disconnect() })
        const watcher = await connect(t, base, { token: owner.token })
        await subscribeWithMembers(watcher, workspaceId)
        const from = watcher.messages.length
        const ghost = { sessionId: '00000000-0000-4000-8000-000000000001', userId: viewer.id, state: { from: 'hash' }, at: Date.now(), exp: Date.now() + 600 }
        await redis.hset(`wb:presence:${workspaceId}`, 'some-socket', JSON.stringify(ghost))
        t.match(await watcher.next(m => m.type === 'presence' && m.kind === 'join', 'join from the hash', from, 2_000), { sessionId: ghost.sessionId, state: { from: 'hash' } })
        // nobody rewrites it: it expires (600 ms) and is found gone at a tick (every 100 ms)
        t.match(await watcher.next(m => m.type === 'presence' && m.kind === 'leave', 'leave at expiry', from, 2_000), { sessionId: ghost.sessionId })
        await sleep(200)
        t.equal(await redis.hexists(`wb:presence:${workspaceId}`, 'some-socket'), 0, 'the expired entry was deleted from the hash')
        await redis.hset(`wb:presence:${workspaceId}`, 'junk', '{"not":"an entry"}')
        await sleep(300)
        t.same(presenceOf(watcher, from).map(m => m.kind), ['join', 'leave'], 'a malformed field is ignored')
        await redis.hdel(`wb:presence:${workspaceId}`, 'junk')
        watcher.close()
      })
    }

    t.test('losing access is a leave', async t => {
      const other = await registerUser(app)
      await addViewer(base, owner, workspaceId, other)
      const watcher = await connect(t, base, { token: owner.token })
      await subscribeWithMembers(watcher, workspaceId)
      const o = await connect(t, base, { token: other.token })
      await subscribeWithMembers(o, workspaceId)
      const from = watcher.messages.length
      o.send({ type: 'presence.set', channel, state: { here: true } })
      await watcher.next(m => m.type === 'presence' && m.kind === 'join', 'join', from)
      t.equal((await request(base, 'DELETE', `/v1/workspaces/${workspaceId}/members/${other.id}`, { token: owner.token })).statusCode, 204, 'member removed')
      t.match(await watcher.next(m => m.type === 'presence' && m.kind === 'leave', 'leave on access lost', from), { sessionId: other.sessionId })
      watcher.close()
    })
  })
}
