import type { Db } from '../db/schema.js'
import { Type, type Static } from '@sinclair/typebox'
import { Change } from '../../schemas/files.js'
import { makeAjv } from '../core/validation.js'
import { toChange } from '../files/changes.js'
import { changesAfter, workspaceHead } from '../db/queries.js'

/**
 * Live change events, from commit to every subscribed socket of every instance.
 *
 * Each committed change is published once on its workspace's channel (Redis pub/sub, or an
 * in-process bus); the committing instance also delivers it to its own subscribers at once,
 * without waiting for the message to come back. Each instance keeps, per channel it has local
 * subscribers for, the last revision it delivered; a message that skips revisions (a lost
 * publish, a Redis restart, a crash between commit and publish) is preceded by the missing
 * changes read from the `changes` table, and a periodic head check catches gaps no later message
 * would reveal. Messages are handled one at a time per channel, so delivery is in revision order;
 * each frame is serialised and encoded once and the same bytes go to every socket, the frames of
 * one commit in one write per socket.
 */

/** What carries messages between instances. */
export interface Transport {
  publish: (channel: string, message: string) => Promise<void>
  /** Resolves once messages on `channel` are really being received. */
  subscribe: (channel: string, onMessage: (message: string) => void) => Promise<void>
  unsubscribe: (channel: string) => Promise<void>
}

/** A text frame as the fan-out sends it: encoded once, shared by every socket. */
export type Frame = Buffer

/** A socket as the fan-out sees it. */
export interface Subscriber {
  readonly clientId: string
  /** the highest revision this subscriber has been sent on each channel */
  readonly sent: Map<string, number>
  /** sends the text frames in order, in one write where the transport allows */
  deliver: (frames: readonly Frame[]) => void
  /** resolves once the subscriber's send buffer has room again (at once if it has) */
  drained?: () => Promise<void>
}

/** What instances say to each other on a workspace's bus channel. */
const BusMessage = Type.Union([
  Type.Object({ t: Type.Literal('changes'), changes: Type.Array(Change, { minItems: 1 }) }),
  Type.Object({ t: Type.Literal('broadcast'), frame: Type.String(), fromClient: Type.String() }),
  Type.Object({ t: Type.Literal('access'), userIds: Type.Array(Type.String()) })
])
type BusMessage = Static<typeof BusMessage>
/** Anything else on the channel (another program, a bad deploy) is dropped, never forwarded. */
const isBusMessage = makeAjv().compile<BusMessage>(BusMessage)

interface Channel {
  workspaceId: string
  subscribers: Set<Subscriber>
  /** the last revision delivered on this instance */
  delivered: number
  /** the newest revision committed by this instance (known before its event comes back) */
  committed: number
  /** true once messages are received and `delivered` is initialised */
  live: boolean
  /** kept for the read cache (see `watch`), even with no subscribers */
  watched: boolean
  /** serialises everything done on the channel */
  queue: Promise<void>
  ready: Promise<void>
}

export const channelName = (workspaceId: string): string => `workspace:${workspaceId}`
const busChannel = (workspaceId: string): string => `wb:workspace:${workspaceId}`

export function eventFrame (workspaceId: string, change: Change): Frame {
  return Buffer.from(JSON.stringify({ type: 'event', channel: channelName(workspaceId), event: 'file.changed', revision: change.revision, data: change }))
}

const REPLAY_PAGE = 1000
/** frames per write in a replay, which waits for the client between writes */
const REPLAY_CHUNK = 100

export interface FanoutOptions {
  db: Db
  transport: Transport
  log: { warn: (obj: object, msg: string) => void }
  /** how often channels check the database head for changes no message announced */
  checkIntervalMs?: number
  /** how many workspaces `watch` keeps subscribed at most */
  maxWatched?: number
}

export class Fanout {
  readonly #channels = new Map<string, Channel>()
  readonly #opts: FanoutOptions
  readonly #timer: NodeJS.Timeout | undefined
  /** deliveries to sockets, and commit-to-delivery lag, for metrics */
  readonly stats = { delivered: 0, published: 0, gapFills: 0 }
  /** listeners for users whose access to a workspace may have changed (sockets, read cache) */
  readonly accessListeners = new Set<(workspaceId: string, userIds: string[]) => void>()
  /** workspaces kept subscribed for the read cache, least recently read first */
  readonly #watched = new Set<string>()
  readonly #maxWatched: number
  /** set by plugins/metrics.ts: called once per change delivered live on this instance */
  onDelivered: ((change: Change) => void) | undefined

  constructor (opts: FanoutOptions) {
    this.#opts = opts
    this.#maxWatched = opts.maxWatched ?? 10_000
    const every = opts.checkIntervalMs ?? 2000
    if (every > 0) {
      this.#timer = setInterval(() => { void this.#checkHeads() }, every)
      this.#timer.unref()
    }
  }

  /** After commit: announce the changes of one workspace to every instance. */
  async publishChanges (workspaceId: string, changes: Change[]): Promise<void> {
    if (changes.length === 0) return
    const channel = this.#channels.get(workspaceId)
    const last = changes.at(-1)?.revision ?? 0
    if (channel?.live === true) {
      channel.committed = Math.max(channel.committed, last)
      // This instance's subscribers need not wait for the message to come back from the bus,
      // unless an earlier change is still on its way (then the bus message delivers in order).
      void this.#enqueue(channel, async () => {
        if (changes[0]?.revision === channel.delivered + 1) this.#send(channel, changes)
      })
    }
    this.stats.published += changes.length
    await this.#publish(workspaceId, { t: 'changes', changes })
  }

  /** An ephemeral message to the channel's other subscribers, on every instance. */
  async publishBroadcast (workspaceId: string, frame: string, fromClient: string): Promise<void> {
    await this.#publish(workspaceId, { t: 'broadcast', frame, fromClient })
  }

  /** Membership changed: every instance rechecks these users' subscriptions. */
  async publishAccessChange (workspaceId: string, userIds: string[]): Promise<void> {
    await this.#publish(workspaceId, { t: 'access', userIds })
  }

  async #publish (workspaceId: string, message: BusMessage): Promise<void> {
    try {
      await this.#opts.transport.publish(busChannel(workspaceId), JSON.stringify(message))
    } catch (err) {
      // At most once by design: subscribers fill the gap from the database.
      this.#opts.log.warn({ err, workspaceId }, 'publish failed; subscribers will catch up from the database')
    }
  }

  /**
   * Adds a subscriber: replays the changes after `since` from the database, then live events,
   * with no gap and no duplicate at the seam. Returns the revision the replay reached.
   */
  async join (workspaceId: string, subscriber: Subscriber, since: number | undefined): Promise<{ revision: number, reset: boolean }> {
    const channel = await this.#channel(workspaceId)
    const name = channelName(workspaceId)
    const ws = await workspaceHead(this.#opts.db, workspaceId)
    const reset = since !== undefined && ws !== undefined && (since < ws.pruned_through || since > ws.revision)
    // The bulk of a long replay goes out before joining the channel, at the pace the client reads:
    // it neither trips the send-buffer bound (a client far behind could never resume) nor holds
    // up the channel's live events meanwhile.
    let from = since === undefined || reset ? (ws?.revision ?? 0) : since
    from = await this.#replay(workspaceId, subscriber, from, ws?.revision ?? 0, true)
    let result = { revision: 0, reset: false }
    await this.#enqueue(channel, async () => {
      const now = await workspaceHead(this.#opts.db, workspaceId)
      const head = now?.revision ?? 0
      await this.#replay(workspaceId, subscriber, from, head, false)
      // This one has everything to `head`. The others must get it too before the channel counts
      // it as delivered: changes committed but not yet announced would otherwise be skipped for them.
      subscriber.sent.set(name, head)
      if (channel.subscribers.size > 0) await this.#fill(channel, head)
      channel.delivered = Math.max(channel.delivered, head)
      channel.subscribers.add(subscriber)
      result = { revision: head, reset }
    })
    return result
  }

  /** Sends the changes after `from` up to `head` to one subscriber; returns how far it got. */
  async #replay (workspaceId: string, subscriber: Subscriber, from: number, head: number, paced: boolean): Promise<number> {
    while (from < head) {
      const changes = await this.#read(workspaceId, from, head)
      if (changes.length === 0) break
      for (let i = 0; i < changes.length; i += REPLAY_CHUNK) {
        if (paced && subscriber.drained !== undefined) await subscriber.drained()
        subscriber.deliver(changes.slice(i, i + REPLAY_CHUNK).map(c => eventFrame(workspaceId, c)))
      }
      from = changes.at(-1)?.revision ?? head
    }
    return from
  }

  async leave (workspaceId: string, subscriber: Subscriber): Promise<void> {
    const channel = this.#channels.get(workspaceId)
    if (channel === undefined) return
    channel.subscribers.delete(subscriber)
    subscriber.sent.delete(channelName(workspaceId))
    await this.#release(channel)
  }

  /** Drops a channel that has neither subscribers nor a watch. */
  async #release (channel: Channel): Promise<void> {
    if (channel.subscribers.size > 0 || channel.watched) return
    await this.#enqueue(channel, async () => {
      if (channel.subscribers.size > 0 || channel.watched || this.#channels.get(channel.workspaceId) !== channel) return
      this.#channels.delete(channel.workspaceId)
      await this.#opts.transport.unsubscribe(busChannel(channel.workspaceId)).catch(() => {})
    })
  }

  /**
   * The newest revision of a workspace this instance is sure of, without asking the database:
   * known while it receives the workspace's events (a subscriber or a `watch`), else undefined.
   * It trails a write on another instance by the time that write's event takes to arrive (about
   * a Redis round trip; at most the head-check interval when a message is lost).
   */
  head (workspaceId: string): number | undefined {
    const channel = this.#channels.get(workspaceId)
    if (channel === undefined || !channel.live) return undefined
    if (channel.watched) {
      this.#watched.delete(workspaceId)
      this.#watched.add(workspaceId)
    }
    return Math.max(channel.delivered, channel.committed)
  }

  /** Keeps receiving a workspace's events so `head` can answer (for the read cache). */
  watch (workspaceId: string): void {
    if (this.#watched.has(workspaceId)) return
    this.#watched.add(workspaceId)
    if (this.#watched.size > this.#maxWatched) {
      const oldest = this.#watched.values().next().value
      if (oldest !== undefined) this.#unwatch(oldest)
    }
    void this.#channel(workspaceId).then(channel => {
      if (this.#watched.has(workspaceId)) channel.watched = true
      else void this.#release(channel)
    }, () => { this.#watched.delete(workspaceId) })
  }

  #unwatch (workspaceId: string): void {
    this.#watched.delete(workspaceId)
    const channel = this.#channels.get(workspaceId)
    if (channel === undefined) return
    channel.watched = false
    void this.#release(channel)
  }

  subscriberCount (): number {
    let n = 0
    for (const c of this.#channels.values()) n += c.subscribers.size
    return n
  }

  close (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
  }

  async #channel (workspaceId: string): Promise<Channel> {
    let channel = this.#channels.get(workspaceId)
    if (channel === undefined) {
      const created: Channel = {
        workspaceId, subscribers: new Set(), delivered: 0, committed: 0, live: false, watched: false, queue: Promise.resolve(), ready: Promise.resolve()
      }
      created.ready = this.#opts.transport.subscribe(busChannel(workspaceId), message => { this.#onMessage(created, message) })
        .then(async () => {
          // Only now does this instance receive the channel: start delivering after the current head.
          const ws = await workspaceHead(this.#opts.db, workspaceId)
          created.delivered = Math.max(created.delivered, ws?.revision ?? 0)
          created.live = true
        })
      created.queue = created.ready
      this.#channels.set(workspaceId, created)
      channel = created
    }
    try {
      await channel.ready
    } catch (err) {
      if (this.#channels.get(workspaceId) === channel) this.#channels.delete(workspaceId)
      throw err
    }
    return channel
  }

  #enqueue (channel: Channel, task: () => Promise<void>): Promise<void> {
    const run = channel.queue.then(task)
    channel.queue = run.catch(err => { this.#opts.log.warn({ err, workspaceId: channel.workspaceId }, 'channel task failed') })
    return run
  }

  #onMessage (channel: Channel, raw: string): void {
    let message: unknown
    try {
      message = JSON.parse(raw)
    } catch {}
    if (!isBusMessage(message)) {
      this.#opts.log.warn({ workspaceId: channel.workspaceId, bytes: raw.length }, 'malformed bus message dropped')
      return
    }
    if (message.t === 'broadcast') {
      const frames = [Buffer.from(message.frame)]
      for (const s of channel.subscribers) if (s.clientId !== message.fromClient) s.deliver(frames)
      return
    }
    if (message.t === 'access') {
      for (const listener of this.accessListeners) listener(channel.workspaceId, message.userIds)
      return
    }
    void this.#enqueue(channel, () => this.#deliver(channel, message.changes))
  }

  /** Delivers changes in order, first filling any gap before them from the database. */
  async #deliver (channel: Channel, changes: Change[]): Promise<void> {
    let run: Change[] = []
    for (const change of changes) {
      const last = run.at(-1)?.revision ?? channel.delivered
      if (change.revision <= last) continue
      if (change.revision > last + 1) {
        this.#send(channel, run)
        run = []
        await this.#fill(channel, change.revision - 1)
        if (change.revision <= channel.delivered) continue
      }
      run.push(change)
    }
    this.#send(channel, run)
  }

  /** Sends consecutive changes after `channel.delivered` to every subscriber that lacks them. */
  #send (channel: Channel, changes: Change[]): void {
    const fresh = changes.filter(c => c.revision > channel.delivered)
    const last = fresh.at(-1)?.revision
    if (last === undefined) return
    channel.delivered = last
    if (this.onDelivered !== undefined) for (const c of fresh) this.onDelivered(c)
    const name = channelName(channel.workspaceId)
    const frames = fresh.map(c => eventFrame(channel.workspaceId, c))
    for (const s of channel.subscribers) {
      const had = s.sent.get(name) ?? 0
      if (had >= last) continue
      s.sent.set(name, last)
      // A subscriber that joined mid-way already has the first few (its replay sent them).
      const from = had < (fresh[0]?.revision ?? last) ? 0 : fresh.findIndex(c => c.revision > had)
      s.deliver(from === 0 ? frames : frames.slice(from))
      this.stats.delivered += frames.length - from
    }
  }

  /** Sends the changes after what the channel delivered, up to `upTo`, from the database. */
  async #fill (channel: Channel, upTo: number): Promise<void> {
    if (channel.delivered >= upTo) return
    this.stats.gapFills++
    while (channel.delivered < upTo) {
      const missing = await this.#read(channel.workspaceId, channel.delivered, upTo)
      if (missing.length === 0) break
      this.#send(channel, missing)
    }
  }

  async #read (workspaceId: string, after: number, upTo: number): Promise<Change[]> {
    const rows = await changesAfter(this.#opts.db, workspaceId, after, REPLAY_PAGE, upTo)
    return rows.map(toChange)
  }

  /** Catches changes that no message announced (lost publish, crash before publish, Redis down). */
  async #checkHeads (): Promise<void> {
    const ids = [...this.#channels.keys()]
    if (ids.length === 0) return
    try {
      const heads = await this.#opts.db.selectFrom('workspaces').select(['id', 'revision']).where('id', 'in', ids).execute()
      for (const { id, revision } of heads) {
        const channel = this.#channels.get(id)
        if (channel === undefined || revision <= channel.delivered) continue
        void this.#enqueue(channel, () => this.#fill(channel, revision))
      }
    } catch (err) {
      this.#opts.log.warn({ err }, 'head check failed')
    }
  }
}
