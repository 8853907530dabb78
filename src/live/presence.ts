import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { makeAjv } from '../core/validation.js'
import { PresenceEntry } from './bus.js'
import type { Fanout } from './hub.js'
import type { Subscriber } from './hub.js'
import { channelName } from './protocol.js'

/**
 * Presence: who is subscribed to a workspace channel, with a small state each (docs/api.md,
 * "Presence").
 *
 * Each socket that sets presence on a channel has one entry, keyed by its clientId, in a store
 * shared by the instances: a Redis hash per channel (`wb:presence:<workspaceId>`), or an
 * in-process map without Redis. An entry holds the session, user, state, when it was set (`at`)
 * and until when it lives (`exp`). The instance that holds the socket rewrites its entries every
 * quarter heartbeat with `exp` three quarters of a heartbeat ahead, and deletes them when the
 * socket leaves the channel; so an entry whose instance died expires within one heartbeat
 * interval. Changes are also announced on the workspace's bus channel, so the other instances
 * learn them at once.
 *
 * Every instance keeps, per channel it has subscribers on, a view of the entries: changed by bus
 * messages at once, and made equal to the store at every tick (an expired entry is deleted from
 * the store and counts as gone; what a lost bus message missed is found there). Members are
 * sessions: a session's state is that of its entry set last. Each instance derives join, update
 * and leave from its own view and sends them to its local subscribers, so what a socket is told
 * is always consistent with the `presence.members` it got after `subscribed`.
 */

/** One member: a session with its current state. */
export interface Member { sessionId: string, userId: string, state: Record<string, unknown> }
export type PresenceKind = 'join' | 'update' | 'leave'

/** Where the entries live between instances. */
export interface PresenceStore {
  put: (workspaceId: string, entries: ReadonlyArray<[string, PresenceEntry]>, ttlMs: number) => Promise<void>
  remove: (workspaceId: string, field: string) => Promise<void>
  list: (workspaceId: string) => Promise<Map<string, PresenceEntry>>
}

const isEntry = makeAjv().compile<PresenceEntry>(PresenceEntry)
const presenceKey = (workspaceId: string): string => `wb:presence:${workspaceId}`

/** The entries in a Redis hash per channel; the hash itself expires when nobody refreshes it. */
export function redisPresenceStore (redis: Redis): PresenceStore {
  return {
    put: async function put (workspaceId, entries, ttlMs) {
      if (entries.length === 0) return
      const key = presenceKey(workspaceId)
      const multi = redis.multi()
      multi.hset(key, Object.fromEntries(entries.map(([field, entry]) => [field, JSON.stringify(entry)])))
      multi.pexpire(key, ttlMs * 4)
      await multi.exec()
    },
    remove: async function remove (workspaceId, field) { await redis.hdel(presenceKey(workspaceId), field) },
    list: async function list (workspaceId) {
      const raw = await redis.hgetall(presenceKey(workspaceId))
      const entries = new Map<string, PresenceEntry>()
      for (const [field, value] of Object.entries(raw)) {
        let entry: unknown
        try {
          entry = JSON.parse(value)
        } catch {
          continue
        }
        if (isEntry(entry)) entries.set(field, entry)
      }
      return entries
    }
  }
}

/** One process: the entries in a map. */
export function memoryPresenceStore (): PresenceStore {
  const channels = new Map<string, Map<string, PresenceEntry>>()
  return {
    put: async function put (workspaceId, entries) {
      const channel = channels.get(workspaceId) ?? new Map<string, PresenceEntry>()
      for (const [field, entry] of entries) channel.set(field, entry)
      channels.set(workspaceId, channel)
    },
    remove: async function remove (workspaceId, field) {
      const channel = channels.get(workspaceId)
      channel?.delete(field)
      if (channel?.size === 0) channels.delete(workspaceId)
    },
    list: async function list (workspaceId) { return new Map(channels.get(workspaceId)) }
  }
}

interface Seen {
  /** null: gone (kept a while, so that an older store read does not bring it back) */
  entry: PresenceEntry | null
  /** when the view last learnt of it (ms, this process's clock) */
  touched: number
}

interface View {
  /** every entry known, by field (clientId) */
  fields: Map<string, Seen>
  /** the members as last told to the watchers, by sessionId */
  members: Map<string, Member>
  watchers: Set<Subscriber>
  ready: Promise<void>
}

export interface PresenceOptions {
  store: PresenceStore
  fanout: Pick<Fanout, 'publishPresence' | 'onPresence'>
  log: { warn: (obj: object, msg: string) => void }
  /** WS_HEARTBEAT_MS: entries of a dead instance are gone within it */
  heartbeatMs: number
}

export class Presence {
  readonly #views = new Map<string, View>()
  /** this instance's sockets' entries, by workspace then field: rewritten at every tick */
  readonly #local = new Map<string, Map<string, PresenceEntry>>()
  readonly #opts: PresenceOptions
  readonly #timer: NodeJS.Timeout
  readonly #unlisten: () => void
  readonly ttlMs: number
  /** this instance, in its bus messages: it knows its own entries already, and better */
  readonly #id = randomUUID()
  /** the `at` of this instance's last set: each set is later than the one before, even within a millisecond */
  #lastAt = 0

  constructor (opts: PresenceOptions) {
    this.#opts = opts
    const every = Math.max(25, Math.floor(opts.heartbeatMs / 4))
    this.ttlMs = opts.heartbeatMs - every
    this.#timer = setInterval(() => { void this.#tick() }, every)
    this.#timer.unref()
    this.#unlisten = opts.fanout.onPresence((workspaceId, message) => {
      const view = this.#views.get(workspaceId)
      if (view !== undefined && message.from !== this.#id) this.#apply(workspaceId, view, message.field, message.sessionId, message.entry)
    })
  }

  close (): void {
    clearInterval(this.#timer)
    this.#unlisten()
  }

  /**
   * Adds a subscriber to the channel's presence events. Once the channel's view is ready (the
   * store read once; an unreadable store leaves it to the next tick), `start` is called with the
   * current members, and from then on the subscriber gets every change: nothing comes between.
   * `start` answers false when the subscriber no longer wants them (it went meanwhile). Call once
   * the hub receives the channel's bus messages (after `fanout.join`).
   */
  async watch (workspaceId: string, subscriber: Subscriber, start: (members: Member[]) => boolean): Promise<void> {
    for (;;) {
      let view = this.#views.get(workspaceId)
      if (view === undefined) {
        const created: View = { fields: new Map(), members: new Map(), watchers: new Set(), ready: Promise.resolve() }
        created.ready = this.#sync(workspaceId, created)
        this.#views.set(workspaceId, created)
        view = created
      }
      await view.ready
      // Released while it was read (its last watcher left): open it again.
      if (this.#views.get(workspaceId) !== view) continue
      if (start([...view.members.values()])) view.watchers.add(subscriber)
      else this.#release(workspaceId)
      return
    }
  }

  unwatch (workspaceId: string, subscriber: Subscriber): void {
    const view = this.#views.get(workspaceId)
    if (view === undefined) return
    view.watchers.delete(subscriber)
    this.#release(workspaceId)
  }

  /** A socket's state on a channel (it must have `open`ed the channel). */
  async set (workspaceId: string, field: string, member: Member): Promise<void> {
    const at = Math.max(Date.now(), this.#lastAt + 1)
    this.#lastAt = at
    const entry: PresenceEntry = { ...member, at, exp: Date.now() + this.ttlMs }
    const local = this.#local.get(workspaceId) ?? new Map<string, PresenceEntry>()
    local.set(field, entry)
    this.#local.set(workspaceId, local)
    const view = this.#views.get(workspaceId)
    if (view !== undefined) this.#apply(workspaceId, view, field, member.sessionId, entry)
    try {
      await this.#opts.store.put(workspaceId, [[field, entry]], this.ttlMs)
    } catch (err) {
      this.#opts.log.warn({ err, workspaceId }, 'presence store failed; retried at the next tick')
    }
    await this.#opts.fanout.publishPresence(workspaceId, { t: 'presence', from: this.#id, field, sessionId: member.sessionId, entry })
  }

  /** A socket left the channel (unsubscribed, closed, lost access): its entry goes, if it had one. */
  async remove (workspaceId: string, field: string): Promise<void> {
    const local = this.#local.get(workspaceId)
    const entry = local?.get(field)
    if (local === undefined || entry === undefined) return
    local.delete(field)
    if (local.size === 0) this.#local.delete(workspaceId)
    const view = this.#views.get(workspaceId)
    if (view !== undefined) this.#apply(workspaceId, view, field, entry.sessionId, null)
    this.#release(workspaceId)
    try {
      await this.#opts.store.remove(workspaceId, field)
    } catch (err) {
      // Left in the store, it expires within a heartbeat interval (nobody rewrites it).
      this.#opts.log.warn({ err, workspaceId }, 'presence remove failed; the entry expires')
    }
    await this.#opts.fanout.publishPresence(workspaceId, { t: 'presence', from: this.#id, field, sessionId: entry.sessionId, entry: null })
  }

  /** Drops a view nobody watches. */
  #release (workspaceId: string): void {
    const view = this.#views.get(workspaceId)
    if (view !== undefined && view.watchers.size === 0) this.#views.delete(workspaceId)
  }

  /** One entry changed: the view takes it, and the watchers are told what that changed for its session. */
  #apply (workspaceId: string, view: View, field: string, sessionId: string, entry: PresenceEntry | null): void {
    const had = view.fields.get(field)?.entry ?? null
    view.fields.set(field, { entry, touched: Date.now() })
    if (entry === null && had === null) return
    if (had !== null && entry !== null && had.at === entry.at) return
    this.#emit(workspaceId, view, sessionId)
  }

  /**
   * Compares a session's member (its entry set last) with what the watchers were told, and tells
   * them the difference. Entries set in the same millisecond on two instances are ordered by
   * field, so that every instance picks the same one.
   */
  #emit (workspaceId: string, view: View, sessionId: string): void {
    let latest: PresenceEntry | undefined
    let latestField = ''
    for (const [field, { entry }] of view.fields) {
      if (entry === null || entry.sessionId !== sessionId) continue
      if (latest === undefined || entry.at > latest.at || (entry.at === latest.at && field > latestField)) {
        latest = entry
        latestField = field
      }
    }
    const before = view.members.get(sessionId)
    let kind: PresenceKind
    let member: Member
    if (latest === undefined) {
      if (before === undefined) return
      view.members.delete(sessionId)
      kind = 'leave'
      member = before
    } else {
      member = { sessionId, userId: latest.userId, state: latest.state }
      if (before !== undefined && before.userId === member.userId && JSON.stringify(before.state) === JSON.stringify(member.state)) return
      view.members.set(sessionId, member)
      kind = before === undefined ? 'join' : 'update'
    }
    const frame = Buffer.from(JSON.stringify({ type: 'presence', channel: channelName(workspaceId), kind, ...member }))
    for (const watcher of view.watchers) watcher.deliver([frame])
  }

  /**
   * Makes the view equal to the store, except for what the bus told it since the read began
   * (newer than the read) and this instance's own entries (it knows them best). Expired entries
   * are deleted from the store and count as gone.
   */
  async #sync (workspaceId: string, view: View): Promise<void> {
    const started = Date.now()
    let stored: Map<string, PresenceEntry>
    try {
      stored = await this.#opts.store.list(workspaceId)
    } catch (err) {
      this.#opts.log.warn({ err, workspaceId }, 'presence store unreadable; the view waits for the next tick')
      return
    }
    const now = Date.now()
    const local = this.#local.get(workspaceId)
    for (const [field, entry] of stored) {
      if (entry.exp < now && local?.has(field) !== true) {
        stored.delete(field)
        this.#opts.store.remove(workspaceId, field).catch(() => {})
      }
    }
    for (const [field, entry] of local ?? []) stored.set(field, entry)
    for (const [field, entry] of stored) {
      const seen = view.fields.get(field)
      if (seen !== undefined && seen.touched >= started && local?.has(field) !== true) continue
      if (seen?.entry?.at !== entry.at) this.#apply(workspaceId, view, field, entry.sessionId, entry)
    }
    for (const [field, seen] of view.fields) {
      if (stored.has(field)) continue
      if (seen.entry !== null && seen.touched < started) this.#apply(workspaceId, view, field, seen.entry.sessionId, null)
      else if (seen.entry === null && now - seen.touched > this.#opts.heartbeatMs) view.fields.delete(field)
    }
  }

  /** Rewrites this instance's entries (new `exp`), then brings every view in line with the store. */
  async #tick (): Promise<void> {
    const exp = Date.now() + this.ttlMs
    await Promise.all([...this.#local].map(async ([workspaceId, local]) => {
      for (const entry of local.values()) entry.exp = exp
      try {
        await this.#opts.store.put(workspaceId, [...local], this.ttlMs)
      } catch (err) {
        this.#opts.log.warn({ err, workspaceId }, 'presence refresh failed')
      }
    }))
    await Promise.all([...this.#views].map(async ([workspaceId, view]) => { await this.#sync(workspaceId, view) }))
  }
}

/**
 * One socket's presence: what it set on which channel, applied at most `perSecond` times a
 * second per channel. A set within the interval is held, and the last one held is applied when
 * the interval ends (coalesced: only the newest state counts).
 */
export class SocketPresence {
  readonly #last = new Map<string, number>()
  readonly #held = new Map<string, { member: Member, timer: NodeJS.Timeout }>()
  readonly #set = new Set<string>()
  readonly #intervalMs: number

  constructor (readonly presence: Presence, readonly clientId: string, perSecond: number) {
    this.#intervalMs = 1000 / perSecond
  }

  set (workspaceId: string, member: Member): void {
    const held = this.#held.get(workspaceId)
    if (held !== undefined) {
      held.member = member
      return
    }
    const wait = (this.#last.get(workspaceId) ?? -Infinity) + this.#intervalMs - Date.now()
    if (wait <= 0) {
      this.#apply(workspaceId, member)
      return
    }
    const timer = setTimeout(() => {
      const h = this.#held.get(workspaceId)
      this.#held.delete(workspaceId)
      if (h !== undefined) this.#apply(workspaceId, h.member)
    }, wait)
    this.#held.set(workspaceId, { member, timer })
  }

  #apply (workspaceId: string, member: Member): void {
    this.#last.set(workspaceId, Date.now())
    this.#set.add(workspaceId)
    void this.presence.set(workspaceId, this.clientId, member)
  }

  /** Leaves the channel's presence (and drops a held state). */
  async leave (workspaceId: string): Promise<void> {
    const held = this.#held.get(workspaceId)
    if (held !== undefined) clearTimeout(held.timer)
    this.#held.delete(workspaceId)
    this.#last.delete(workspaceId)
    if (this.#set.delete(workspaceId)) await this.presence.remove(workspaceId, this.clientId)
  }
}
