/**
 * The open sockets of this instance and the two bounds on them: WS_MAX_CONNECTIONS sockets in
 * all, and WS_MAX_SOCKETS_PER_USER authenticated sockets per user. Both are counted per instance
 * (in this process): a user may hold that many on each instance behind the load balancer. A
 * shared count would need Redis entries that outlive a crashed instance; per instance needs none.
 */
export class Sockets<T> {
  readonly #all = new Set<T>()
  readonly #byUser = new Map<string, Set<T>>()
  readonly #userOf = new Map<T, string>()

  constructor (readonly maxConnections: number, readonly maxPerUser: number) {}

  /** true once the instance holds WS_MAX_CONNECTIONS sockets: a further upgrade is refused */
  get full (): boolean { return this.#all.size >= this.maxConnections }

  [Symbol.iterator] (): IterableIterator<T> { return this.#all.values() }

  /** Counts a new socket; false (and not counted) when the instance is full. */
  add (socket: T): boolean {
    if (this.full) return false
    this.#all.add(socket)
    return true
  }

  /**
   * Counts an authenticated socket against its user; false (and not counted) when the user
   * already has WS_MAX_SOCKETS_PER_USER here. A socket counts once, however often it re-authenticates.
   */
  claim (socket: T, userId: string): boolean {
    if (this.#userOf.has(socket)) return true
    // One that was never counted, or already let go, must not hold a place nothing gives back.
    if (!this.#all.has(socket)) return false
    const mine = this.#byUser.get(userId) ?? new Set<T>()
    if (mine.size >= this.maxPerUser) return false
    mine.add(socket)
    this.#byUser.set(userId, mine)
    this.#userOf.set(socket, userId)
    return true
  }

  delete (socket: T): void {
    this.#all.delete(socket)
    const userId = this.#userOf.get(socket)
    if (userId === undefined) return
    this.#userOf.delete(socket)
    const mine = this.#byUser.get(userId)
    mine?.delete(socket)
    if (mine?.size === 0) this.#byUser.delete(userId)
  }
}
