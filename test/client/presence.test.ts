import t from 'tap'
import WebSocket from 'ws'
import { WorkbenchClient, type PresenceEvent, type PresenceMember } from '../../client/src/index.js'
import { build, listen, PASSWORD, sleep } from '../helpers/app.js'
import { startProxy } from '../helpers/proxy.js'

/**
 * `subscription.presence` against the real server: the members (self included) from the
 * options' state, `set`, `onChange` and `onPresence`, leave on unsubscribe, and after a
 * reconnect a members map rebuilt from the server's list (a member that left meanwhile is gone,
 * one that came meanwhile is there).
 */

const fast = { reconnectDelayMs: 50, maxReconnectDelayMs: 300 }
const email = (): string => `sdk-presence-${Math.random().toString(36).slice(2)}@example.com`

async function until (check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

const states = (members: ReadonlyMap<string, PresenceMember>): Record<string, unknown> =>
  Object.fromEntries([...members.values()].map(m => [m.sessionId, m.state]))

t.test('presence in the SDK', async t => {
  const app = await build(t, { WS_HEARTBEAT_MS: '1000' })
  const base = await listen(app)
  const proxy = await startProxy(t, Number(new URL(base).port))
  const ownerEmail = email()
  const viewerEmail = email()
  const client = async (address: string, baseUrl = base, register = false): Promise<WorkbenchClient> => {
    const c = new WorkbenchClient({ baseUrl, WebSocket, live: fast })
    if (register) await c.auth.register({ email: address, password: PASSWORD })
    else await c.auth.login({ email: address, password: PASSWORD })
    t.teardown(() => { c.live.close() })
    return c
  }
  const a = await client(ownerEmail, base, true)
  const bUser = await client(viewerEmail, base, true)
  bUser.live.close()
  const ws = await a.workspaces.create('presence')
  await a.members.put(ws.id, { email: viewerEmail, role: 'viewer' })
  const b = await client(viewerEmail, proxy.base)
  const aId = a.sessionId ?? ''
  const bId = b.sessionId ?? ''

  const aEvents: PresenceEvent[] = []
  const subA = a.live.subscribe(ws.id, { presence: { file: '/a.txt' }, onPresence: (_m, e) => { aEvents.push(e) } }, () => {})
  await subA.ready
  await until(() => subA.presence.members.has(aId), 'a sees itself')
  t.same(states(subA.presence.members), { [aId]: { file: '/a.txt' } }, 'the options\' state is announced at the subscribe')

  const bEvents: PresenceEvent[] = []
  const subB = b.live.subscribe(ws.id, {}, () => {})
  const unlisten = subB.presence.onChange((members, e) => {
    t.equal(members, subB.presence.members, 'listeners get the members map')
    bEvents.push(e)
  })
  await subB.ready
  await until(() => subB.presence.members.has(aId), 'b gets a from the server\'s list')
  t.notOk(subB.presence.members.has(bId), 'b has set no state: not a member')
  t.same(bEvents.map(e => [e.kind, e.member.sessionId]), [['join', aId]])

  subB.presence.set({ file: '/b.txt', name: 'Bee' })
  await until(() => subA.presence.members.has(bId), 'a sees b join')
  await until(() => subB.presence.members.has(bId), 'b sees itself')
  t.match(aEvents.at(-1), { kind: 'join', member: { sessionId: bId, state: { file: '/b.txt', name: 'Bee' } } })

  subA.presence.set({ file: '/c.txt' })
  await until(() => (subB.presence.members.get(aId)?.state.file) === '/c.txt', 'b sees a\'s update')
  t.match(bEvents.at(-1), { kind: 'update', member: { sessionId: aId, userId: String, state: { file: '/c.txt' } } })

  t.test('after a reconnect the members are rebuilt from the server: none left over, none missing', async t => {
    // b is cut off (its socket stops carrying anything, new ones are refused) ...
    proxy.freeze(true)
    b.live.reconnectNow()
    // ... while a leaves and another session of the owner comes.
    subA.unsubscribe()
    const c = await client(ownerEmail)
    const cId = c.sessionId ?? ''
    const subC = c.live.subscribe(ws.id, { presence: { file: '/new.txt' } }, () => {})
    await subC.ready
    await until(() => subC.presence.members.has(cId), 'c is a member')
    t.ok(subB.presence.members.has(aId), 'b, cut off, has not heard of the leave')
    t.notOk(subB.presence.members.has(cId))
    const mark = bEvents.length
    proxy.freeze(false)
    proxy.dropAll()
    await until(() => !subB.presence.members.has(aId) && subB.presence.members.has(cId) && subB.presence.members.has(bId), 'b\'s members rebuilt')
    t.same(states(subB.presence.members), { [bId]: { file: '/b.txt', name: 'Bee' }, [cId]: { file: '/new.txt' } }, 'b and c, with their states; a is gone')
    const kinds = bEvents.slice(mark).map(e => `${e.kind} ${e.member.sessionId === aId ? 'a' : e.member.sessionId === cId ? 'c' : 'b'}`)
    t.ok(kinds.includes('leave a') && kinds.includes('join c'), `the differences told as events: ${kinds.join(', ')}`)
    t.ok(b.live.connections >= 2, 'b reconnected')

    // b's state was announced again on the new socket: c sees b.
    await until(() => subC.presence.members.has(bId), 'c sees b after b\'s resubscribe')
    subC.unsubscribe()
    await until(() => !subB.presence.members.has(cId), 'c leaves on unsubscribe')
    unlisten()
    const count = bEvents.length
    subB.presence.set({ file: '/d.txt' })
    await until(() => subB.presence.members.get(bId)?.state.file === '/d.txt', 'own update')
    t.equal(bEvents.length, count, 'a removed listener hears nothing')
  })
})
