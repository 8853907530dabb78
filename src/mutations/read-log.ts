import { AsyncLocalStorage } from 'node:async_hooks'
import type { Db } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { insertActivities, type NewActivity } from './activity.js'

/**
 * ACTIVITY_LOG_READS: reads (file reads, tree listings, history, changes, search) and WebSocket
 * messages other than ping go into their session's activity log too. Nothing of it is on the
 * request's path: an entry is queued when the answer is sent (the queue is bounded: past the bound
 * entries are dropped and counted), and the queue is written every `intervalMs` in one
 * multi-row insert (at most `maxBatch` rows each), then mirrored to CHAT_LOG_DIR.
 * Off (the default), none of this exists: the hooks that feed it are not even registered.
 */

/** The read cache's lookups during one read (`track`): the entry says hit or miss. */
export interface CacheUse {
  hits: number
  misses: number
}

/** WebSocket RPC methods that are mutations: the pipeline records those, with their outcome. */
const RPC_MUTATIONS = new Set(['files.write', 'files.delete', 'operations.apply', 'operations.batch'])
const UUID_IN = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i

export interface ReadLogOptions {
  /** entries waiting to be written at most; more are dropped (counted in `stats.dropped`) */
  maxQueue?: number
  intervalMs?: number
  /** rows per insert */
  maxBatch?: number
  /** after the insert: the Markdown mirror */
  committed?: (entry: NewActivity) => void
  onError?: (err: unknown) => void
}

export class ReadLog {
  readonly stats = { written: 0, dropped: 0 }
  readonly #db: Db
  readonly #maxQueue: number
  readonly #intervalMs: number
  readonly #maxBatch: number
  readonly #committed: (entry: NewActivity) => void
  readonly #onError: (err: unknown) => void
  readonly #cache = new AsyncLocalStorage<CacheUse>()
  #queue: NewActivity[] = []
  #timer: NodeJS.Timeout | undefined
  #writing: Promise<void> = Promise.resolve()

  constructor (db: Db, options: ReadLogOptions = {}) {
    this.#db = db
    this.#maxQueue = options.maxQueue ?? 10_000
    this.#intervalMs = options.intervalMs ?? 100
    this.#maxBatch = options.maxBatch ?? 1000
    this.#committed = options.committed ?? (() => {})
    this.#onError = options.onError ?? (() => {})
  }

  /** Queues an entry; never blocks, never throws. */
  push (entry: NewActivity): boolean {
    if (this.#queue.length >= this.#maxQueue) {
      this.stats.dropped++
      return false
    }
    entry.at ??= new Date()
    this.#queue.push(entry)
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.#timer = undefined; void this.flush() }, this.#intervalMs)
      this.#timer.unref()
    }
    return true
  }

  /** Runs `fn` (the rest of a request) with the read cache's lookups counted into `use`. */
  track (use: CacheUse, fn: () => void): void {
    this.#cache.run(use, fn)
  }

  /** The read cache's counters call these (plugins/app/cache.ts). */
  cacheHit (): void {
    const use = this.#cache.getStore()
    if (use !== undefined) use.hits++
  }

  cacheMiss (): void {
    const use = this.#cache.getStore()
    if (use !== undefined) use.misses++
  }

  /**
   * A WebSocket message other than ping and auth (src/live/connection.ts), recorded as it is
   * received: type `ws`, operation its type (`rpc <method>` for a call), path its channel or the
   * call's path. Mutating calls are left to the pipeline, which records them with their outcome.
   */
  message (actor: Actor, message: { type: string }, clientId: string): void {
    const m = message as { type: string, channel?: unknown, method?: unknown, params?: unknown, since?: unknown, id?: unknown }
    const method = typeof m.method === 'string' ? m.method : undefined
    if (m.type === 'rpc' && method !== undefined && RPC_MUTATIONS.has(method)) return
    const params = typeof m.params === 'object' && m.params !== null ? m.params as Record<string, unknown> : {}
    const channel = typeof m.channel === 'string' ? m.channel : undefined
    const workspace = channel ?? (typeof params.workspaceId === 'string' ? params.workspaceId : '')
    const rpc = m.type === 'rpc' ? `rpc ${method ?? ''}`.slice(0, 100) : undefined
    this.push({
      sessionId: actor.sessionId,
      userId: actor.userId,
      workspaceId: UUID_IN.exec(workspace)?.[0].toLowerCase() ?? null,
      type: 'ws',
      op: rpc ?? m.type.slice(0, 100),
      path: channel ?? (typeof params.path === 'string' ? params.path.slice(0, 1100) : null),
      status: 200,
      durationMs: 0,
      context: rpc === undefined ? `WS ${m.type.slice(0, 100)}` : `RPC ${method ?? ''}`.slice(0, 104),
      details: {
        clientId,
        ...(typeof m.since === 'number' ? { since: m.since } : {}),
        ...(typeof m.id === 'string' || typeof m.id === 'number' ? { id: m.id } : {})
      }
    })
  }

  /** Writes everything queued so far, in batches of `maxBatch` rows. */
  async flush (): Promise<void> {
    const queued = this.#queue
    this.#queue = []
    this.#writing = this.#writing.then(async () => {
      for (let i = 0; i < queued.length; i += this.#maxBatch) {
        const batch = queued.slice(i, i + this.#maxBatch)
        try {
          await insertActivities(this.#db, batch)
          this.stats.written += batch.length
          for (const entry of batch) this.#committed(entry)
        } catch (err) {
          this.stats.dropped += batch.length
          this.#onError(err)
        }
      }
    })
    await this.#writing
  }

  async close (): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.flush()
  }
}
