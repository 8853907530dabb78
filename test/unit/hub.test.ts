import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { busChannel, localTransport, type Transport } from '../../src/live/bus.js'
import { Fanout, type Subscriber } from '../../src/live/hub.js'
import type { Frame } from '../../src/live/protocol.js'
import type { Change } from '../../schemas/files.js'
import { build, createWorkspace, registerUser, type TestUser } from '../helpers/app.js'

/**
 * The hub against the real PostgreSQL, with the in-process bus: what the bus says (or fails to
 * say) is scripted here, while the changes themselves are committed through the app's REST write
 * path, so the `changes` rows the hub fills gaps from are real. The hub under test is not the
 * app's own: the app's writes reach it only through the messages these tests publish.
 */

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** A socket stand-in: the event revisions it was sent, and its other frames, in order. */
class Recorder implements Subscriber {
  readonly revisions: number[] = []
  readonly others: unknown[] = []
  readonly writes: number[] = []
  constructor (readonly clientId: string, readonly drained?: () => Promise<void>) {}
  deliver (frames: readonly Frame[]): void {
    this.writes.push(frames.length)
    for (const frame of frames) {
      const message = JSON.parse(frame.toString()) as { type: string, revision?: number }
      if (message.type === 'event' && typeof message.revision === 'number') this.revisions.push(message.revision)
      else this.others.push(message)
    }
  }
}

async function until (check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

interface Setup {
  app: FastifyInstance
  user: TestUser
  workspaceId: string
  transport: Transport
  warnings: string[]
  hub: (options?: { checkIntervalMs?: number, maxWatched?: number, transport?: Transport }) => Fanout
  /** writes a file through the app; returns its revision */
  write: (path: string) => Promise<number>
  /** the committed changes after `since`, as the REST change feed gives them */
  changes: (since: number) => Promise<Change[]>
  /** says on the bus what instances say after a commit */
  announce: (changes: Change[]) => Promise<void>
  /** lets the bus deliver what was published (the in-process bus defers to the next turn) */
  settle: () => Promise<void>
}

async function setup (t: Test): Promise<Setup> {
  const app = await build(t)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  const transport = localTransport()
  const warnings: string[] = []
  const log = { warn: (_obj: object, msg: string) => { warnings.push(msg) } }
  return {
    app,
    user,
    workspaceId,
    transport,
    warnings,
    hub: options => {
      const hub = new Fanout({ db: app.db, transport, log, checkIntervalMs: 0, ...options })
      t.teardown(() => { hub.close() })
      return hub
    },
    write: async path => {
      const res = await app.inject({ method: 'PUT', url: `/v1/workspaces/${workspaceId}/files${path}`, headers: user.auth, payload: { content: path } })
      if (res.statusCode !== 201) throw new Error(`write failed: ${res.statusCode} ${res.body}`)
      return res.json<{ revision: number }>().revision
    },
    changes: async since => {
      const res = await app.inject({ method: 'GET', url: `/v1/workspaces/${workspaceId}/changes?since=${since}`, headers: user.auth })
      return res.json<{ changes: Change[] }>().changes
    },
    announce: async changes => {
      await transport.publish(busChannel(workspaceId), JSON.stringify({ t: 'changes', changes }))
    },
    settle: async () => {
      // setImmediate delivery, then the channel's queue and its database reads
      await sleep(150)
    }
  }
}

/** The change of one revision, from the feed. */
function at (changes: Change[], revision: number): Change {
  const change = changes.find(c => c.revision === revision)
  if (change === undefined) throw new Error(`no change ${revision}`)
  return change
}

/** Two subscribers that record their frames, `a` then `b`, joined at the head. */
async function joinedPair (hub: Fanout, workspaceId: string): Promise<[Recorder, Recorder]> {
  const pair: [Recorder, Recorder] = [new Recorder('a'), new Recorder('b')]
  for (const r of pair) await hub.join(workspaceId, r, undefined)
  return pair
}

t.test('a message that skips revisions is preceded by the missing changes, read from the database', async t => {
  const s = await setup(t)
  const hub = s.hub()
  const a = new Recorder('a')
  t.same(await hub.join(s.workspaceId, a, undefined), { revision: 0, reset: false }, 'joined at the head')
  t.same([await s.write('/1.txt'), await s.write('/2.txt'), await s.write('/3.txt')], [1, 2, 3], 'three commits, revisions 1..3')
  const feed = await s.changes(0)

  await s.announce([at(feed, 3)])
  await s.settle()
  t.same(a.revisions, [1, 2, 3], '1 and 2 filled from the changes table, before 3')
  t.same(a.writes, [2, 1], 'the filled changes in one write, then the announced one')

  await s.announce([at(feed, 1)])
  await s.announce([at(feed, 2), at(feed, 3)])
  await s.settle()
  t.same(a.revisions, [1, 2, 3], 'late messages for delivered revisions are not sent again')

  t.same([await s.write('/4.txt'), await s.write('/5.txt'), await s.write('/6.txt')], [4, 5, 6])
  const more = await s.changes(3)
  await s.announce([at(more, 6), at(more, 4)])
  await s.settle()
  t.same(a.revisions, [1, 2, 3, 4, 5, 6], 'one message out of order: 4 and 5 filled before 6; the stale 4 skipped')
})

t.test('messages arriving out of order are delivered in revision order, each once', async t => {
  const s = await setup(t)
  const hub = s.hub()
  const [a, b] = await joinedPair(hub, s.workspaceId)
  for (const path of ['/1.txt', '/2.txt', '/3.txt', '/4.txt']) await s.write(path)
  const feed = await s.changes(0)
  for (const revision of [2, 4, 1, 3]) await s.announce([at(feed, revision)])
  await s.settle()
  t.same(a.revisions, [1, 2, 3, 4], 'a: in order')
  t.same(b.revisions, [1, 2, 3, 4], 'b: in order')
})

t.test('a change that no message announces is caught by the periodic head check', async t => {
  const s = await setup(t)
  const hub = s.hub({ checkIntervalMs: 100 })
  const a = new Recorder('a')
  await hub.join(s.workspaceId, a, undefined)
  t.same([await s.write('/1.txt'), await s.write('/2.txt')], [1, 2])
  await until(() => a.revisions.length >= 2, 'the head check')
  await sleep(300)
  t.same(a.revisions, [1, 2], 'both changes, in order, once')

  // A later message for what the head check delivered is not sent twice.
  await s.announce(await s.changes(0))
  await s.settle()
  t.same(a.revisions, [1, 2])
})

t.test('joining with since: the replay, then live events, with no gap and no duplicate at the seam', async t => {
  const s = await setup(t)
  const hub = s.hub()
  for (let i = 1; i <= 5; i++) await s.write(`/${i}.txt`)
  const a = new Recorder('a')
  t.same(await hub.join(s.workspaceId, a, undefined), { revision: 5, reset: false })

  // While b's replay is going out (before it joins the channel), 6 is committed and announced,
  // and 7 is committed but not yet announced.
  let during: Promise<void> | undefined
  const b = new Recorder('b', async () => {
    during ??= (async () => {
      const six = await s.write('/6.txt')
      await s.announce([at(await s.changes(5), six)])
      await until(() => a.revisions.includes(6), 'a to get 6')
      await s.write('/7.txt')
    })()
    await during
  })
  t.same(await hub.join(s.workspaceId, b, 2), { revision: 7, reset: false }, 'the replay reached the head')
  t.same(b.revisions, [3, 4, 5, 6, 7], 'b: the replay after since, up to the head at joining')
  t.same(a.revisions, [6, 7], 'a got 7 (committed, not announced) when b joined at 7')

  await s.announce(await s.changes(5))
  await s.write('/8.txt')
  await s.announce([at(await s.changes(7), 8)])
  await s.settle()
  t.same(b.revisions, [3, 4, 5, 6, 7, 8], 'b: then live, no duplicate at the seam')
  t.same(a.revisions, [6, 7, 8], 'a: each once')

  const c = new Recorder('c')
  t.same(await hub.join(s.workspaceId, c, 99), { revision: 8, reset: true }, 'since ahead of the head: a reset')
  t.same(c.revisions, [], 'and no replay')
})

t.test('a malformed bus message is dropped and logged; the channel goes on', async t => {
  const s = await setup(t)
  const hub = s.hub()
  const [a, b] = await joinedPair(hub, s.workspaceId)
  const garbage = [
    'not json',
    '{}',
    JSON.stringify({ t: 'changes', changes: [] }),
    JSON.stringify({ t: 'changes', changes: [{ revision: 'one', op: 'create' }] }),
    JSON.stringify({ t: 'broadcast', frame: 123, fromClient: 'a' }),
    JSON.stringify({ t: 'access', userIds: [1] })
  ]
  const heard: string[] = []
  const unlisten = hub.onAccessChange((workspaceId, userIds) => { heard.push(`${workspaceId}:${userIds.join(',')}`) })
  for (const message of garbage) await s.transport.publish(busChannel(s.workspaceId), message)
  await s.settle()
  t.same(a.revisions, [], 'no event')
  t.same(a.others, [], 'nothing else either')
  t.same(heard, [], 'no access change')
  t.same(s.warnings.filter(w => w === 'malformed bus message dropped').length, garbage.length, 'each one logged')

  await s.write('/1.txt')
  await s.announce(await s.changes(0))
  await hub.publishBroadcast(s.workspaceId, JSON.stringify({ type: 'broadcast', data: 'hi' }), 'a')
  await hub.publishAccessChange(s.workspaceId, ['u1', 'u2'])
  await s.settle()
  t.same(a.revisions, [1], 'a well-formed message still goes through')
  t.same([a.others, b.others], [[], [{ type: 'broadcast', data: 'hi' }]], 'a broadcast reaches the others, not its sender')
  t.same(heard, [`${s.workspaceId}:u1,u2`], 'access listeners hear access changes')
  unlisten()
  await hub.publishAccessChange(s.workspaceId, ['u3'])
  await s.settle()
  t.equal(heard.length, 1, 'not once unsubscribed')
})

t.test('the committing instance delivers at once; onDelivered sees each live change once', async t => {
  const s = await setup(t)
  // This hub's own publishes go nowhere: what its subscriber gets, it got locally.
  const hub = s.hub({ transport: { ...s.transport, publish: async () => {} } })
  const a = new Recorder('a')
  const delivered: number[] = []
  const unlisten = hub.onDelivered(change => { delivered.push(change.revision) })
  await hub.join(s.workspaceId, a, undefined)
  await s.write('/1.txt')
  const feed = await s.changes(0)
  await hub.publishChanges(s.workspaceId, feed)
  t.same(a.revisions, [1], 'delivered without the bus')
  await s.announce(feed)
  await s.settle()
  t.same(a.revisions, [1], 'and not again when the bus message came')
  t.same(delivered, [1])
  unlisten()
  await s.write('/2.txt')
  await s.announce(await s.changes(1))
  await s.settle()
  t.same(a.revisions, [1, 2])
  t.same(delivered, [1], 'no listener once unsubscribed')
})

t.test('heads: known while watched, with the newest local commit; the least recently read is dropped past the bound', async t => {
  const s = await setup(t)
  const hub = s.hub({ maxWatched: 1 })
  await s.write('/1.txt')
  t.equal(hub.heads.head(s.workspaceId), undefined, 'not watched: unknown')
  hub.heads.watch(s.workspaceId)
  await until(() => hub.heads.head(s.workspaceId) !== undefined, 'the watch')
  t.equal(hub.heads.head(s.workspaceId), 1)
  await s.write('/2.txt')
  await hub.publishChanges(s.workspaceId, await s.changes(1))
  t.equal(hub.heads.head(s.workspaceId), 2, 'a local commit is known at once')

  const other = await createWorkspace(s.app, s.user, 'other')
  hub.heads.watch(other)
  await until(() => hub.heads.head(other) !== undefined, 'the second watch')
  await until(() => hub.heads.head(s.workspaceId) === undefined, 'the first to be dropped')
  t.pass('past maxWatched the oldest watch is dropped')
})

t.test('a join queued behind its channel\'s release (the last subscriber just left) joins the channel as it is then: live events reach it', async t => {
  const s = await setup(t)
  // The release's unsubscribe waits until the test lets it go (Redis slow, or down and reconnecting).
  let letGo = (): void => {}
  const held = new Promise<void>(resolve => { letGo = resolve })
  const transport: Transport = { ...s.transport, unsubscribe: async channel => { await held; await s.transport.unsubscribe(channel) } }
  const hub = s.hub({ transport })
  const first = new Recorder('first')
  await hub.join(s.workspaceId, first, undefined)
  const leaving = hub.leave(s.workspaceId, first)
  const second = new Recorder('second')
  const joining = hub.join(s.workspaceId, second, undefined)
  await sleep(100)
  letGo()
  await leaving
  const joined = await joining
  const revision = await s.write('/after.txt')
  await s.announce((await s.changes(joined.revision)).filter(c => c.revision === revision))
  await until(() => second.revisions.includes(revision), 'the live event after the join')
  t.same(second.revisions, [revision], 'the change committed after the join, once')
})
