import type { Db } from '../db/schema.js'
import type { Change } from '../../schemas/files.js'
import { toChange } from '../files/changes.js'
import { changesAfter, workspaceHead } from '../db/queries.js'
import { busChannel, parseBusMessage, type BusMessage, type Transport } from './bus.js'
import { settled } from '../core/settled.js'
import { Heads } from './heads.js'
import { eventFrame, type Frame } from './protocol.js'

/**
 * Live change events, from commit to every subscribed socket of every instance.
 *
 * Each committed change is published once on its workspace's bus channel (bus.ts: Redis pub/sub,
 * or an in-process bus), at most once; the committing instance also delivers it to its own
 * subscribers at once, without waiting for the message to come back. Each instance keeps, per
 * channel it has local subscribers (or a watch, heads.ts) for, the last revision it delivered; a
 * message that skips revisions (a lost publish, a Redis restart, a crash between commit and
 * publish) is preceded by the missing changes read from the `changes` table, and a periodic head
 * check catches gaps no later message would reveal. Messages are handled one at a time per
 * channel, so delivery is in revision order; the hub also keeps, per subscriber, the last
 * revision that subscriber was sent, so one that joined with a replay gets no duplicate at the
 * seam. Each frame is serialised and encoded once and the same bytes go to every socket, the
 * frames of one commit in one write per socket.
 *
 * A little over 300 lines, kept in one file: joining, delivery, gap filling and the head check
 * all move the same per-channel revisions under the same per-channel queue.
 */

/** A socket as the hub sees it. */
export interface Subscriber {
  readonly clientId: string
  /**
   * Sends the text frames in order, in one write where the transport allows. `live`: the
   * channel's workspace, for frames of the live stream (not a subscriber's own replay), which a
   * subscriber may hold until it has told its client `subscribed`.
   */
  deliver: (frames: readonly Frame[], live?: string) => void
  /** resolves once the subscriber's send buffer has room again (at once if it has) */
  drained?: () => Promise<void>
  /** false once the subscriber has gone (closed): a replay to it stops there */
  readonly open?: boolean
}

/** users whose access to a workspace may have changed */
export type AccessListener = (workspaceId: string, userIds: string[]) => void
/** a change delivered live on this instance */
export type DeliveredListener = (change: Change) => void
/** a presence message from the bus (any instance, this one too) */
export type PresenceListener = (workspaceId: string, message: Extract<BusMessage, { t: 'presence' }>) => void

interface Channel {
  workspaceId: string
  /** each subscriber with the highest revision it has been sent on this channel */
  subscribers: Map<Subscriber, number>
  /** the last revision delivered on this instance */
  delivered: number
  /** the newest revision committed by this instance (known before its event comes back) */
  committed: number
  /** true once messages are received and `delivered` is initialised */
  live: boolean
  /** kept for the read cache (see heads.ts), even with no subscribers */
  watched: boolean
  /** serialises everything done on the channel */
  queue: Promise<void>
  ready: Promise<void>
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
  /** how many workspaces `heads.watch` keeps subscribed at most */
  maxWatched?: number
}

export class Fanout {
  readonly #channels = new Map<string, Channel>()
  readonly #opts: FanoutOptions
  readonly #timer: NodeJS.Timeout | undefined
  readonly #accessListeners = new Set<AccessListener>()
  readonly #deliveredListeners = new Set<DeliveredListener>()
  readonly #presenceListeners = new Set<PresenceListener>()
  /** publishes not yet answered by the transport: waited for on close */
  readonly #publishing = new Set<Promise<unknown>>()
  /** the read cache's view of the channels: workspace heads without a query */
  readonly heads: Heads

  constructor (opts: FanoutOptions) {
    this.#opts = opts
    this.heads = new Heads({
      follow: async workspaceId => {
        // (as `join`: a channel released meanwhile is no longer received; watch the new one)
        for (let channel = await this.#channel(workspaceId); ; channel = await this.#channel(workspaceId)) {
          channel.watched = true
          if (this.#channels.get(workspaceId) === channel) return
        }
      },
      unfollow: workspaceId => { this.#unfollow(workspaceId) },
      revision: workspaceId => this.#revision(workspaceId)
    }, opts.maxWatched ?? 10_000)
    const every = opts.checkIntervalMs ?? 2000
    if (every > 0) {
      this.#timer = setInterval(() => { void this.#checkHeads() }, every)
      this.#timer.unref()
    }
  }

  /** Users whose access to a workspace may have changed, announced by any instance (sockets, read cache). */
  onAccessChange (listener: AccessListener): () => void {
    return listen(this.#accessListeners, listener)
  }

  /** Called once per change delivered live on this instance (for the delivery lag metric). */
  onDelivered (listener: DeliveredListener): () => void {
    return listen(this.#deliveredListeners, listener)
  }

  /** Presence messages of the channels this instance receives (src/live/presence.ts). */
  onPresence (listener: PresenceListener): () => void {
    return listen(this.#presenceListeners, listener)
  }

  /** A socket's presence entry set or gone: told to every instance receiving the channel. */
  async publishPresence (workspaceId: string, message: Extract<BusMessage, { t: 'presence' }>): Promise<void> {
    await this.#publish(workspaceId, message)
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
    const sent = this.#opts.transport.publish(busChannel(workspaceId), JSON.stringify(message))
    this.#publishing.add(sent)
    try {
      await sent
    } catch (err) {
      // At most once by design: subscribers fill the gap from the database.
      this.#opts.log.warn({ err, workspaceId }, 'publish failed; subscribers will catch up from the database')
    } finally {
      this.#publishing.delete(sent)
    }
  }

  /**
   * Adds a subscriber: replays the changes after `since` from the database, then live events,
   * with no gap and no duplicate at the seam. Returns the revision the replay reached.
   */
  async join (workspaceId: string, subscriber: Subscriber, since: number | undefined): Promise<{ revision: number, reset: boolean }> {
    const channel = await this.#channel(workspaceId)
    const ws = await workspaceHead(this.#opts.db, workspaceId)
    const reset = since !== undefined && ws !== undefined && (since < ws.pruned_through || since > ws.revision)
    // The bulk of a long replay goes out before joining the channel, at the pace the client reads:
    // it neither trips the send-buffer bound (a client far behind could never resume) nor holds
    // up the channel's live events meanwhile.
    const start = since === undefined || reset ? (ws?.revision ?? 0) : since
    const reached = await this.#replay(workspaceId, subscriber, start, ws?.revision ?? 0, true)
    // Gone part way (a replay to a client that stopped reading times out): it never joins.
    if (reached === undefined) return { revision: start, reset }
    const from = reached
    let result: { revision: number, reset: boolean } | undefined
    await this.#enqueue(channel, async () => {
      // Released while this join waited in its queue (its last subscriber left just before): a
      // channel no longer received nor head-checked. Join the channel as it is now, below.
      if (this.#channels.get(workspaceId) !== channel) return
      const now = await workspaceHead(this.#opts.db, workspaceId)
      const head = now?.revision ?? 0
      await this.#replay(workspaceId, subscriber, from, head, false)
      // This one has everything to `head`. The others must get it too before the channel counts
      // it as delivered: changes committed but not yet announced would otherwise be skipped for them.
      if (channel.subscribers.size > 0) await this.#fill(channel, head)
      channel.delivered = Math.max(channel.delivered, head)
      channel.subscribers.set(subscriber, head)
      result = { revision: head, reset }
    })
    return result ?? { revision: (await this.join(workspaceId, subscriber, from)).revision, reset }
  }

  /**
   * Sends the changes after `from` up to `head` to one subscriber; returns how far it got, or
   * undefined when the subscriber went away while a paced replay waited for it.
   */
  async #replay (workspaceId: string, subscriber: Subscriber, from: number, head: number, paced: boolean): Promise<number | undefined> {
    while (from < head) {
      const changes = await this.#read(workspaceId, from, head)
      if (changes.length === 0) break
      for (let i = 0; i < changes.length; i += REPLAY_CHUNK) {
        if (paced && subscriber.drained !== undefined) await subscriber.drained()
        if (paced && subscriber.open === false) return undefined
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

  /** See `Heads.head`: the revision is known only while the channel receives its events. */
  #revision (workspaceId: string): number | undefined {
    const channel = this.#channels.get(workspaceId)
    if (channel === undefined || !channel.live) return undefined
    return Math.max(channel.delivered, channel.committed)
  }

  #unfollow (workspaceId: string): void {
    const channel = this.#channels.get(workspaceId)
    if (channel === undefined) return
    channel.watched = false
    void this.#release(channel)
  }

  /** Stops the head checks and waits (at most `waitMs`) for the publishes under way: before the transport closes. */
  async close (waitMs = 0): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await settled(this.#publishing, waitMs)
  }

  async #channel (workspaceId: string): Promise<Channel> {
    let channel = this.#channels.get(workspaceId)
    if (channel === undefined) {
      const created: Channel = {
        workspaceId, subscribers: new Map(), delivered: 0, committed: 0, live: false, watched: false, queue: Promise.resolve(), ready: Promise.resolve()
      }
      created.ready = this.#opts.transport.subscribe(busChannel(workspaceId), raw => { this.#onMessage(created, raw) })
        .then(async () => {
          // Only now does this instance receive the channel: start delivering after the current head.
          const ws = await workspaceHead(this.#opts.db, workspaceId)
          created.delivered = Math.max(created.delivered, ws?.revision ?? 0)
          created.live = true
        })
      // Tasks wait for the channel to be received; if that fails (Redis down) the channel is
      // dropped (below) and what was queued on it runs against no subscriber, never rejects unhandled.
      created.queue = created.ready.catch(() => {})
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
    const message = parseBusMessage(raw)
    if (message === undefined) {
      this.#opts.log.warn({ workspaceId: channel.workspaceId, bytes: raw.length }, 'malformed bus message dropped')
      return
    }
    if (message.t === 'broadcast') {
      const frames = [Buffer.from(message.frame)]
      for (const s of channel.subscribers.keys()) if (s.clientId !== message.fromClient) s.deliver(frames, channel.workspaceId)
      return
    }
    if (message.t === 'presence') {
      for (const listener of this.#presenceListeners) listener(channel.workspaceId, message)
      return
    }
    if (message.t === 'access') {
      for (const listener of this.#accessListeners) listener(channel.workspaceId, message.userIds)
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
    for (const listener of this.#deliveredListeners) for (const c of fresh) listener(c)
    const frames = fresh.map(c => eventFrame(channel.workspaceId, c))
    for (const [s, had] of channel.subscribers) {
      if (had >= last) continue
      channel.subscribers.set(s, last)
      // A subscriber that joined mid-way already has the first few (its replay sent them).
      const from = had < (fresh[0]?.revision ?? last) ? 0 : fresh.findIndex(c => c.revision > had)
      s.deliver(from === 0 ? frames : frames.slice(from), channel.workspaceId)
    }
  }

  /** Sends the changes after what the channel delivered, up to `upTo`, from the database. */
  async #fill (channel: Channel, upTo: number): Promise<void> {
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
        if (channel === undefined || !channel.live || revision <= channel.delivered) continue
        void this.#enqueue(channel, () => this.#fill(channel, revision))
      }
    } catch (err) {
      this.#opts.log.warn({ err }, 'head check failed')
    }
  }
}

/** Adds a listener to a set; returns what removes it. */
function listen<L> (listeners: Set<L>, listener: L): () => void {
  listeners.add(listener)
  return function unlisten () { listeners.delete(listener) }
}
