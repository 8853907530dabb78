import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'

/**
 * The read cache: an in-process LRU bounded by bytes, in front of Redis (when configured), in
 * front of PostgreSQL.
 *
 * Nothing here is ever invalidated, because nothing cached can go stale:
 * - blobs are immutable and keyed by sha256;
 * - entries (a file's meta, a directory's meta and children) are keyed by the workspace revision
 *   they were read at. Every read learns the current revision from the same query that checks
 *   access, so a write moves every later read, on every instance, to new keys at once — a read
 *   after a write returns the new content immediately, with no dependence on events arriving.
 *   Old keys simply age out of the LRU (and expire in Redis).
 */

export type CacheLayer = 'memory' | 'redis'

export interface CacheCounters {
  hit: (layer: CacheLayer) => void
  miss: (layer: CacheLayer) => void
}

export interface CacheOptions {
  /** in-process bytes; 0 disables the in-process layer */
  maxBytes: number
  redis?: Redis | undefined
  counters?: CacheCounters
  /** blobs larger than this stay out of Redis */
  redisMaxBlobBytes?: number
}

const ENTRY_TTL_SECONDS = 600
const BLOB_TTL_SECONDS = 3600
const PREFIX = 'wb:cache:'

export class ReadCache {
  readonly #lru: LRUCache<string, Buffer | { json: string }> | undefined
  readonly #redis: Redis | undefined
  readonly #counters: CacheCounters | undefined
  readonly #redisMaxBlob: number

  constructor (options: CacheOptions) {
    this.#lru = options.maxBytes > 0
      ? new LRUCache<string, Buffer | { json: string }>({
        maxSize: options.maxBytes,
        sizeCalculation: v => Math.max(1, Buffer.isBuffer(v) ? v.length : v.json.length * 2)
      })
      : undefined
    this.#redis = options.redis
    this.#counters = options.counters
    this.#redisMaxBlob = options.redisMaxBlobBytes ?? 1024 * 1024
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
      return JSON.parse(local.json) as T
    }
    const redis = this.#liveRedis()
    if (redis !== undefined) {
      const remote = await redis.get(PREFIX + key).catch(() => null)
      if (remote !== null) {
        this.#counters?.hit('redis')
        this.#lru?.set(key, { json: remote })
        return JSON.parse(remote) as T
      }
    }
    this.#counters?.miss(redis !== undefined ? 'redis' : 'memory')
    const value = await load()
    if (value !== undefined) {
      const json = JSON.stringify(value)
      this.#lru?.set(key, { json })
      if (redis !== undefined) void redis.set(PREFIX + key, json, 'EX', ENTRY_TTL_SECONDS).catch(() => {})
    }
    return value
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
