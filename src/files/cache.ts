import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'
import type { WorkspaceHead } from '../accounts/workspaces.js'

/**
 * The read cache: an in-process LRU bounded by bytes, in front of Redis (when configured), in
 * front of PostgreSQL.
 *
 * Cached content is never invalidated, because it cannot go stale:
 * - blobs are immutable and keyed by sha256;
 * - entries (a file's meta, a directory's meta and children) are keyed by the workspace revision
 *   they were read at; old keys age out of the LRU (and expire in Redis);
 * - a plain read's JSON answer (the entry with its content, serialized) likewise, in memory only.
 *
 * What moves is the current revision. A read learns it from the fan-out (`access`): the writing
 * instance knows its own commit at once, every other instance as soon as the change event
 * arrives (about a Redis round trip; at most the fan-out's 2 s head check when a message is
 * lost). Until an instance follows a workspace, reads ask PostgreSQL, in the query that checks
 * access.
 */

export type CacheLayer = 'memory' | 'redis'

export interface CacheCounters {
  hit: (layer: CacheLayer) => void
  miss: (layer: CacheLayer) => void
  /** an entry dropped to stay within the bound (the in-process layer; Redis evicts on its own) */
  evicted?: (layer: CacheLayer) => void
}

/** Where the cache learns a workspace's current revision without a query (the fan-out). */
export interface HeadSource {
  head: (workspaceId: string) => number | undefined
  watch: (workspaceId: string) => void
}

export interface CacheOptions {
  /** in-process bytes; 0 disables the in-process layer */
  maxBytes: number
  redis?: Redis | undefined
  counters?: CacheCounters
  /** blobs larger than this stay out of Redis */
  redisMaxBlobBytes?: number
  /** with it, a cache hit needs no query at all (see `access`) */
  heads?: HeadSource | undefined
  /** how long a membership is trusted without a query, as a bound for lost access events */
  membershipTtlMs?: number
}

/**
 * What the read route sends for a plain read (no ?format=raw, ?lines=, ?revision=): the entry as
 * its own serializer wrote it, with the validator and the revision it was read at.
 */
export interface JsonAnswer {
  body: Buffer
  revision: number
  httpEtag: string
  /** the entry and blob lookups the answer was made from (1 for a directory, 2 for a file) */
  lookups: number
}

const ENTRY_TTL_SECONDS = 600
const BLOB_TTL_SECONDS = 3600
const PREFIX = 'wb:cache:'

export class ReadCache {
  /** blobs as Buffers; entries and JSON answers as the objects themselves (never mutated), with their size */
  readonly #lru: LRUCache<string, Buffer | { value: unknown, size: number }> | undefined
  readonly #redis: Redis | undefined
  readonly #counters: CacheCounters | undefined
  readonly #redisMaxBlob: number
  readonly #heads: HeadSource | undefined
  /** `${workspaceId}:${userId}` → the workspace's fixed facts, for members only */
  readonly #members: LRUCache<string, Omit<WorkspaceHead, 'revision'>>

  constructor (options: CacheOptions) {
    this.#lru = options.maxBytes > 0
      ? new LRUCache<string, Buffer | { value: unknown, size: number }>({
        maxSize: options.maxBytes,
        sizeCalculation: v => Math.max(1, Buffer.isBuffer(v) ? v.length : v.size),
        dispose: (_value, _key, reason) => { if (reason === 'evict') options.counters?.evicted?.('memory') }
      })
      : undefined
    this.#redis = options.redis
    this.#counters = options.counters
    this.#redisMaxBlob = options.redisMaxBlobBytes ?? 1024 * 1024
    this.#heads = options.heads
    this.#members = new LRUCache({ max: 100_000, ttl: options.membershipTtlMs ?? 30_000 })
  }

  /**
   * Read access and the current revision. From memory when this instance follows the workspace's
   * events and has seen the caller read it before; otherwise `load` asks PostgreSQL, and the
   * workspace is followed from then on. Membership changes drop entries (`forget`), on every
   * instance, through the access events that member removal and workspace deletion publish.
   */
  async access (workspaceId: string, userId: string, load: () => Promise<WorkspaceHead>): Promise<WorkspaceHead> {
    if (this.#lru !== undefined && this.#heads !== undefined) {
      const facts = this.#members.get(`${workspaceId}:${userId}`)
      const revision = this.#heads.head(workspaceId)
      if (facts !== undefined && revision !== undefined) return { ...facts, revision }
    }
    const facts = await load()
    if (this.#lru !== undefined && this.#heads !== undefined) {
      this.#members.set(`${workspaceId}:${userId}`, { ownerId: facts.ownerId, createdAt: facts.createdAt })
      this.#heads.watch(workspaceId)
    }
    return facts
  }

  /**
   * `access` from memory alone, as a revision: the current one when this instance follows the
   * workspace and has seen the user read it before; undefined when only PostgreSQL can say.
   * Synchronous, for the cache-hit read (`keptEntryJson`).
   */
  keptRevision (workspaceId: string, userId: string): number | undefined {
    if (this.#lru === undefined || this.#heads === undefined || this.#members.get(`${workspaceId}:${userId}`) === undefined) return undefined
    return this.#heads.head(workspaceId)
  }

  /**
   * Bytes held per layer, for /metrics: the in-process LRU's own count, and (when connected) the
   * Redis server's used memory, which it shares with pub/sub and the rate limits.
   */
  async bytes (): Promise<Partial<Record<CacheLayer, number>>> {
    const held: Partial<Record<CacheLayer, number>> = {}
    if (this.#lru !== undefined) held.memory = this.#lru.calculatedSize
    const redis = this.#liveRedis()
    if (redis !== undefined) {
      const used = /^used_memory:(\d+)/m.exec(await redis.info('memory').catch(() => ''))?.[1]
      if (used !== undefined) held.redis = Number(used)
    }
    return held
  }

  /** These users' access to the workspace may have changed: ask the database next time. */
  forget (workspaceId: string, userIds: string[]): void {
    for (const userId of userIds) this.#members.delete(`${workspaceId}:${userId}`)
  }

  /** Redis is used only while connected: a cache must never make a read wait or fail. */
  #liveRedis (): Redis | undefined {
    return this.#redis?.status === 'ready' ? this.#redis : undefined
  }

  /** An entry read at a revision, through the layers; `load` reads PostgreSQL. */
  async entry<T> (workspaceId: string, revision: number, path: string, load: () => Promise<T>): Promise<T> {
    const key = `e:${workspaceId}:${revision}:${path}`
    const local = this.#lru?.get(key)
    if (local !== undefined && !Buffer.isBuffer(local)) {
      this.#counters?.hit('memory')
      return local.value as T
    }
    const redis = this.#liveRedis()
    if (redis !== undefined) {
      const remote = await redis.get(PREFIX + key).catch(() => null)
      if (remote !== null) {
        this.#counters?.hit('redis')
        const value = JSON.parse(remote) as T
        this.#lru?.set(key, { value, size: remote.length * 2 })
        return value
      }
    }
    this.#counters?.miss(redis !== undefined ? 'redis' : 'memory')
    const value = await load()
    if (value !== undefined) {
      const json = JSON.stringify(value)
      this.#lru?.set(key, { value, size: json.length * 2 })
      if (redis !== undefined) void redis.set(PREFIX + key, json, 'EX', ENTRY_TTL_SECONDS).catch(() => {})
    }
    return value
  }

  /**
   * A plain read's JSON answer at a revision (see `JsonAnswer`), in memory only: it is made from
   * the entry and the blob, which the other layers hold. A hit counts as the lookups it spares.
   */
  answer (workspaceId: string, revision: number, path: string): JsonAnswer | undefined {
    const local = this.#lru?.get(`j:${workspaceId}:${revision}:${path}`)
    if (local === undefined || Buffer.isBuffer(local)) return undefined
    const answer = local.value as JsonAnswer
    for (let i = 0; i < answer.lookups; i++) this.#counters?.hit('memory')
    return answer
  }

  keepAnswer (workspaceId: string, path: string, answer: JsonAnswer): void {
    this.#lru?.set(`j:${workspaceId}:${answer.revision}:${path}`, { value: answer, size: answer.body.length })
  }

  /** A blob by sha256, through the layers; `load` reads PostgreSQL. */
  async blob (sha256: string, load: () => Promise<Buffer | undefined>): Promise<Buffer | undefined> {
    const key = `b:${sha256}`
    const local = this.#lru?.get(key)
    if (Buffer.isBuffer(local)) {
      this.#counters?.hit('memory')
      return local
    }
    const redis = this.#liveRedis()
    if (redis !== undefined) {
      const remote = await redis.getBuffer(PREFIX + key).catch(() => null)
      if (remote !== null) {
        this.#counters?.hit('redis')
        this.#lru?.set(key, remote)
        return remote
      }
    }
    this.#counters?.miss(redis !== undefined ? 'redis' : 'memory')
    const bytes = await load()
    if (bytes !== undefined) {
      this.#lru?.set(key, bytes)
      if (redis !== undefined && bytes.length <= this.#redisMaxBlob) void redis.set(PREFIX + key, bytes, 'EX', BLOB_TTL_SECONDS).catch(() => {})
    }
    return bytes
  }

  get stats (): { entries: number, bytes: number } {
    return { entries: this.#lru?.size ?? 0, bytes: this.#lru?.calculatedSize ?? 0 }
  }
}
