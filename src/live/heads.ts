import type { HeadSource } from '../files/cache.js'

/**
 * Workspace heads for the read cache (src/files/cache.ts), known without a query: while this
 * instance receives a workspace's events (it has a subscriber there, or the cache asked to
 * `watch` it), the hub knows its newest revision. Watching costs a bus subscription per
 * workspace, so the watched set is bounded and the least recently read workspace goes first.
 */

/** What the hub offers the heads: channels it keeps open without subscribers, and their revision. */
export interface Followed {
  /** keeps the workspace's channel open; resolves once its events are received */
  follow: (workspaceId: string) => Promise<void>
  /** lets the channel close once it has no subscribers either */
  unfollow: (workspaceId: string) => void
  /** the newest revision known while the channel is open and receiving, else undefined */
  revision: (workspaceId: string) => number | undefined
}

export class Heads implements HeadSource {
  /** watched workspaces, least recently read first (a Set iterates in insertion order) */
  readonly #watched = new Set<string>()
  readonly #channels: Followed
  readonly #max: number
  /** the last of `#watched` when known (undefined otherwise): reading it again moves nothing */
  #newest: string | undefined

  constructor (channels: Followed, maxWatched: number) {
    this.#channels = channels
    this.#max = maxWatched
  }

  /**
   * The newest revision of a workspace this instance is sure of, without asking the database:
   * known while it receives the workspace's events (a subscriber or a `watch`), else undefined.
   * It trails a write on another instance by the time that write's event takes to arrive (about
   * a Redis round trip; at most the head-check interval when a message is lost).
   */
  head (workspaceId: string): number | undefined {
    const revision = this.#channels.revision(workspaceId)
    if (revision !== undefined && workspaceId !== this.#newest && this.#watched.delete(workspaceId)) {
      this.#watched.add(workspaceId)
      this.#newest = workspaceId
    }
    return revision
  }

  /** Keeps receiving a workspace's events so `head` can answer. */
  watch (workspaceId: string): void {
    if (this.#watched.has(workspaceId)) return
    this.#watched.add(workspaceId)
    this.#newest = workspaceId
    if (this.#watched.size > this.#max) {
      const oldest = this.#watched.values().next().value
      if (oldest !== undefined) this.#unwatch(oldest)
    }
    this.#channels.follow(workspaceId).then(() => {
      // Evicted while the channel was being opened.
      if (!this.#watched.has(workspaceId)) this.#channels.unfollow(workspaceId)
    }, () => { this.#forget(workspaceId) })
  }

  #unwatch (workspaceId: string): void {
    this.#forget(workspaceId)
    this.#channels.unfollow(workspaceId)
  }

  #forget (workspaceId: string): void {
    this.#watched.delete(workspaceId)
    if (this.#newest === workspaceId) this.#newest = undefined
  }
}
