import t from 'tap'
import WebSocket from 'ws'
import { WorkbenchClient, WorkspaceMirror, type BroadcastMessage, type LiveEvent, type LiveStatus } from '../../client/src/index.js'
import { build, listen, PASSWORD, sleep } from '../helpers/app.js'
import { startProxy } from '../helpers/proxy.js'

/**
 * The live socket against the real server: own echoes by opId, `reset` answered by a
 * re-snapshot, a dead socket found by the heartbeat, an RPC whose answer was lost sent again
 * (applied once), broadcasts, and a subscription that ends when access is lost.
 */

const email = (): string => `sdk-live-${Math.random().toString(36).slice(2)}@example.com`
const fast = { reconnectDelayMs: 50, maxReconnectDelayMs: 300 }

async function until (check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

t.test('live', async t => {
  const app = await build(t, { WS_HEARTBEAT_MS: '1000' })
  const base = await listen(app)
  const port = Number(new URL(base).port)
  const address = email()
  const owner = new WorkbenchClient({ baseUrl: base, WebSocket, live: fast })
  await owner.auth.register({ email: address, password: PASSWORD })
  t.teardown(() => { owner.live.close() })

  /** Another client of the same user, on its own session, through `baseUrl`. */
  const tab = async (baseUrl = base): Promise<WorkbenchClient> => {
    const c = new WorkbenchClient({ baseUrl, WebSocket, live: fast })
    await c.auth.login({ email: address, password: PASSWORD })
    t.teardown(() => { c.live.close() })
    return c
  }

  t.test('closed while its socket is still connecting: no error escapes', async t => {
    const ws = await owner.workspaces.create('early-close')
    // (the socket is made once the client has a token: a few ms after subscribe)
    for (let i = 0; i < 8; i++) {
      const c = await tab()
      c.live.subscribe(ws.id, {}, () => {})
      await sleep(i)
      c.live.close()
      await sleep(50)
    }
    t.pass('closed eight clients, 0 to 7 ms after subscribing')
  })

  t.test('events in order, each once; a write\'s own echo is recognised by its opId', async t => {
    const ws = await owner.workspaces.create('echo')
    const other = await tab()
    const events: LiveEvent[] = []
    const sub = owner.live.subscribe(ws.id, {}, e => { events.push(e) })
    t.equal(await sub.ready, 0)
    await owner.files.write(ws.id, '/mine.txt', { content: '1' }, { idempotencyKey: 'my-key-1' })
    await other.files.write(ws.id, '/theirs.txt', { content: '2' })
    await owner.live.rpc('files.write', { workspaceId: ws.id, path: '/rpc.txt', content: '3' })
    await until(() => events.length === 3, '3 events')
    t.same(events.map(e => [e.revision, e.change.path, e.own]), [[1, '/mine.txt', true], [2, '/theirs.txt', false], [3, '/rpc.txt', true]])
    t.equal(events[0]?.change.opId, 'my-key-1')
    t.equal(owner.live.connections, 1, 'one socket for the client')
    sub.unsubscribe()
  })

  t.test('a reset (since ahead of the head) calls onReset, and the subscription resumes from the new snapshot', async t => {
    const ws = await owner.workspaces.create('reset')
    await owner.files.write(ws.id, '/a.txt', { content: 'a' })
    const resets: number[] = []
    const events: LiveEvent[] = []
    const sub = owner.live.subscribe(ws.id, {
      since: 50,
      onReset: async head => {
        resets.push(head)
        return (await owner.files.treeAll(ws.id)).revision
      }
    }, e => { events.push(e) })
    t.equal(await sub.ready, 1)
    t.same(resets, [1], 'onReset got the head')
    await owner.files.write(ws.id, '/b.txt', { content: 'b' })
    await until(() => events.length === 1, 'the event after the reset')
    t.same(events.map(e => e.revision), [2])
    sub.unsubscribe()
  })

  t.test('a mirror that was away longer than the feed is kept re-reads the tree (reset) and equals /tree again', async t => {
    // A server that keeps changes for one second only.
    const pruning = await listen(await build(t, { CHANGE_RETENTION: '1s', RETENTION_INTERVAL_MS: '200' }))
    const owner = new WorkbenchClient({ baseUrl: pruning })
    await owner.auth.register({ email: address, password: PASSWORD })
    const ws = await owner.workspaces.create('pruned')
    const proxy = await startProxy(t, Number(new URL(pruning).port))
    const away = await tab(proxy.base)
    const mirror = await WorkspaceMirror.open(away, ws.id)
    t.teardown(() => { mirror.close() })
    const updates: string[] = []
    mirror.onChange(u => { updates.push(u.type) })
    await owner.files.write(ws.id, '/before.txt', { content: '1' })
    await mirror.reached(1)
    proxy.freeze(true)
    proxy.dropAll()
    for (let i = 0; i < 5; i++) await owner.operations.apply(ws.id, { type: 'create', path: `/away/${i}.md`, content: String(i), metadata: { i } })
    await owner.operations.apply(ws.id, { type: 'move', path: '/before.txt', newPath: '/away/moved.txt' })
    // CHANGE_RETENTION=1s: the changes the mirror missed are pruned.
    await sleep(2_500)
    t.match(await owner.files.changes(ws.id, { since: 1 }), { reset: true }, 'the feed no longer has them')
    proxy.freeze(false)
    await mirror.reached(6, 15_000)
    t.same(mirror.list(), (await owner.files.treeAll(ws.id)).entries, 'the mirror equals /tree')
    t.ok(updates.includes('snapshot'), 'it re-read the tree')
  })

  t.test('a dead socket (nothing arrives, nothing closes) is found by the heartbeat; the subscription resumes', async t => {
    const ws = await owner.workspaces.create('dead')
    const proxy = await startProxy(t, port)
    const client = await tab(proxy.base)
    const statuses: Array<[LiveStatus, number]> = []
    client.live.onStatus(s => { statuses.push([s, Date.now()]) })
    const events: LiveEvent[] = []
    await client.live.subscribe(ws.id, { since: 0 }, e => { events.push(e) }).ready
    await owner.files.write(ws.id, '/1.txt', { content: '1' })
    await until(() => events.length === 1, 'event 1')
    const frozenAt = Date.now()
    proxy.freeze(true)
    await owner.files.write(ws.id, '/2.txt', { content: '2' })
    await until(() => statuses.some(([s]) => s === 'reconnecting'), 'the heartbeat to notice', 5_000)
    const noticed = (statuses.find(([s]) => s === 'reconnecting')?.[1] ?? 0) - frozenAt
    t.ok(noticed < 2_500, `noticed after ${noticed} ms (heartbeatMs 1000: dead after 1500 ms of silence)`)
    await owner.files.write(ws.id, '/3.txt', { content: '3' })
    proxy.freeze(false)
    await until(() => events.length === 3, 'events 2 and 3 after the reconnect')
    t.same(events.map(e => e.revision), [1, 2, 3], 'resumed from the last revision: nothing lost, nothing twice')
    t.equal(client.live.connections, 2)
  })

  t.test('in a browser, `visibilitychange` probes the socket and `online` reconnects without waiting for the backoff', async t => {
    // What a browser has: window events on globalThis, and a document.
    const g = globalThis as Record<string, unknown>
    const win = new EventTarget()
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    g.addEventListener = win.addEventListener.bind(win)
    g.removeEventListener = win.removeEventListener.bind(win)
    g.document = doc
    t.teardown(() => { delete g.addEventListener; delete g.removeEventListener; delete g.document })
    const ws = await owner.workspaces.create('browser')
    const proxy = await startProxy(t, port)
    // A heartbeat too slow to matter and a backoff too long to wait for: only the events can act in time.
    const client = new WorkbenchClient({ baseUrl: proxy.base, WebSocket, live: { heartbeatTimeoutMs: 60_000, probeTimeoutMs: 300, reconnectDelayMs: 60_000, maxReconnectDelayMs: 60_000 } })
    await client.auth.login({ email: address, password: PASSWORD })
    t.teardown(() => { client.live.close() })
    const events: LiveEvent[] = []
    await client.live.subscribe(ws.id, { since: 0 }, e => { events.push(e) }).ready
    proxy.freeze(true)
    const hidden = Date.now()
    doc.dispatchEvent(new Event('visibilitychange'))
    await until(() => client.live.status === 'reconnecting', 'the probe to fail', 3_000)
    t.ok(Date.now() - hidden < 1_500, `the dead socket was found by the probe in ${Date.now() - hidden} ms`)
    await owner.files.write(ws.id, '/while-away.txt', { content: '1' })
    proxy.freeze(false)
    const online = Date.now()
    win.dispatchEvent(new Event('online'))
    await until(() => events.length === 1, 'the event written while away', 5_000)
    t.ok(Date.now() - online < 2_000, `back ${Date.now() - online} ms after online (the backoff alone could take up to a minute)`)
    t.equal(events[0]?.change.path, '/while-away.txt')
    t.equal(client.live.status, 'open')
  })

  t.test('an RPC whose answer was lost is sent again after the reconnect and applied once', async t => {
    const ws = await owner.workspaces.create('rpc')
    const proxy = await startProxy(t, port)
    const client = await tab(proxy.base)
    await client.live.subscribe(ws.id, {}, () => {}).ready
    proxy.freeze('down')
    const answer = client.live.rpc('files.write', { workspaceId: ws.id, path: '/once.txt', content: 'x' })
    await sleep(300)
    t.equal((await owner.files.changes(ws.id)).head, 1, 'the server applied it; its answer is lost')
    proxy.dropAll()
    proxy.freeze(false)
    t.match(await answer, { file: { path: '/once.txt' }, revision: 1 }, 'the first application\'s answer')
    t.equal((await owner.files.changes(ws.id)).head, 1, 'applied once')
  })

  t.test('broadcasts reach the other subscribers', async t => {
    const ws = await owner.workspaces.create('broadcast')
    const other = await tab()
    const got: BroadcastMessage[] = []
    const mine = owner.live.subscribe(ws.id, {}, () => {})
    await other.live.subscribe(ws.id, { onBroadcast: m => { got.push(m) } }, () => {}).ready
    await mine.ready
    mine.broadcast({ cursor: 3 })
    await until(() => got.length === 1, 'the broadcast')
    t.match(got[0], { workspaceId: ws.id, data: { cursor: 3 }, from: { sessionId: owner.sessionId } })
    mine.unsubscribe()
  })

  t.test('a member removed from the workspace: the subscription ends with WORKSPACE_NOT_FOUND', async t => {
    const ws = await owner.workspaces.create('access')
    const viewer = new WorkbenchClient({ baseUrl: base, WebSocket, live: fast })
    const viewerEmail = email()
    const user = (await viewer.auth.register({ email: viewerEmail, password: PASSWORD })).user
    t.teardown(() => { viewer.live.close() })
    await owner.members.put(ws.id, { email: viewerEmail, role: 'viewer' })
    let ended: unknown
    await viewer.live.subscribe(ws.id, { onError: e => { ended = e } }, () => {}).ready
    await owner.members.remove(ws.id, user.id)
    await until(() => ended !== undefined, 'the end of the subscription')
    t.match(ended, { code: 'WORKSPACE_NOT_FOUND' })
    const refused = await viewer.live.subscribe(ws.id, {}, () => {}).ready.catch((e: unknown) => e)
    t.match(refused, { code: 'WORKSPACE_NOT_FOUND' }, 'subscribing again is refused')
  })
})
