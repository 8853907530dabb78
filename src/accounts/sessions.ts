import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import { LRUCache } from 'lru-cache'
import type { Db } from '../db/schema.js'
import { errors } from '../core/errors.js'

/**
 * Session ownership (issue "Hardening", findings 4 and 5). A session id belongs to the user who
 * first used it — by logging in, in a token's `sid`, in `X-Session-Id`, in a WebSocket `auth`
 * message or in an operation's `sessionId` — and anyone else naming it is refused with 403
 * FORBIDDEN, so nobody can add entries to another user's activity log or CHAT_LOG_DIR file.
 * The `sessions` table records it; the first use wins atomically (the primary key, with
 * `INSERT … ON CONFLICT DO NOTHING` and reading the owner back).
 *
 * A user may start at most `max` new sessions per `windowMs` (MAX_NEW_SESSIONS_PER_WINDOW per
 * RATE_LIMIT_WINDOW_MS): the sessions table's rows the user created in the last window are
 * counted, under a per-user advisory lock so concurrent first uses cannot both take the last
 * place. Past it: 429 RATE_LIMITED, with Retry-After for when the oldest of them leaves the window.
 */

export interface SessionBound {
  max: number
  windowMs: number
}

// Two-key advisory locks (this class, the user's hash): a space apart from the one-key locks of
// migrations, retention and the tests.
const LOCK_CLASS = 727278

export class SessionRegistry {
  readonly #db: Db
  readonly #bound: SessionBound
  // Owners never change and rows are never deleted, so what was read once stays true; bounded.
  readonly #owners = new LRUCache<string, string>({ max: 20_000 })

  constructor (db: Db, bound: SessionBound) {
    this.#db = db
    this.#bound = bound
  }

  /** Makes sure `sessionId` is `userId`'s: claims it on its first use, else 403 FORBIDDEN. */
  async claim (userId: string, sessionId: string): Promise<void> {
    if (this.claimed(userId, sessionId)) return
    const sid = sessionId.toLowerCase()
    const owner = await this.#ownerOf(sid) ?? await this.#create(userId.toLowerCase(), sid)
    this.#owners.set(sid, owner)
    // now known: true for the caller's own, 403 FORBIDDEN for another user's
    this.claimed(userId, sid)
  }

  /**
   * `claim` from memory alone: true when the session is known to be `userId`'s, 403 FORBIDDEN
   * when known to be another's, false when only the database can say (then `claim`).
   */
  claimed (userId: string, sessionId: string): boolean {
    const sid = sessionId.toLowerCase()
    const owner = this.#owners.get(sid)
    if (owner === undefined) return false
    if (owner !== userId.toLowerCase()) throw errors.forbidden(`session ${sid} belongs to another user`)
    return true
  }

  /** A new session for a login or registration (within the same bound). */
  async open (userId: string): Promise<string> {
    const sid = randomUUID()
    await this.claim(userId, sid)
    return sid
  }

  async #ownerOf (sid: string): Promise<string | undefined> {
    const row = await this.#db.selectFrom('sessions').select('user_id').where('id', '=', sid).executeTakeFirst()
    return row?.user_id
  }

  /** Claims `sid` for `userId` if nobody has it yet; returns its owner, whoever won. */
  async #create (userId: string, sid: string): Promise<string> {
    const { max, windowMs } = this.#bound
    return await this.#db.transaction().execute(async trx => {
      await sql`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(${userId}))`.execute(trx)
      // Another request may have claimed it while this one waited for the lock.
      const taken = await trx.selectFrom('sessions').select('user_id').where('id', '=', sid).executeTakeFirst()
      if (taken !== undefined) return taken.user_id
      const { rows } = await sql<{ n: number, wait_s: number | null }>`
        SELECT count(*)::int AS n,
               ceil(extract(epoch FROM min(created_at) + make_interval(secs => ${windowMs / 1000}) - now()))::int AS wait_s
          FROM sessions
         WHERE user_id = ${userId} AND created_at > now() - make_interval(secs => ${windowMs / 1000})`.execute(trx)
      const recent = rows[0]
      if (recent !== undefined && recent.n >= max) throw errors.tooManySessions(max, windowMs, Math.max(1, recent.wait_s ?? 1))
      // Another user's claim is not under this lock: the primary key decides, the first one wins.
      const inserted = await trx.insertInto('sessions').values({ id: sid, user_id: userId })
        .onConflict(oc => oc.column('id').doNothing()).returning('user_id').executeTakeFirst()
      if (inserted !== undefined) return inserted.user_id
      const winner = await trx.selectFrom('sessions').select('user_id').where('id', '=', sid).executeTakeFirst()
      if (winner === undefined) throw errors.internal()
      return winner.user_id
    })
  }
}

/**
 * Sessions ended by logout (issue "Hardening", finding 15), as every instance knows them: logout
 * sets `sessions.ended_at`, and each instance reads the sessions ended since its last look every
 * `pollMs` (a partial index makes that a small read), so within a second every instance refuses
 * the session's access tokens and closes its sockets. Reading the table rather than trusting a
 * pub/sub message means an instance that missed one (Redis down, a restart) still learns it.
 * An ended session is remembered for as long as one of its access tokens can be valid.
 */
export class EndedSessions {
  readonly #db: Db
  readonly #keepMs: number
  /** session id → when it ended (this instance's clock) */
  readonly #ended = new Map<string, number>()
  readonly #listeners = new Set<(sessionId: string) => void>()
  /** when the last read started (this instance's clock); undefined before the first */
  #lastRead: number | undefined

  constructor (db: Db, keepMs: number) {
    this.#db = db
    this.#keepMs = keepMs
  }

  has (sessionId: string): boolean {
    return this.#ended.has(sessionId)
  }

  /** Called for every session this instance learns has ended (to close its sockets). */
  onEnded (listener: (sessionId: string) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Ends a session (logout): on this instance at once, on the others at their next read. */
  async end (sessionId: string): Promise<void> {
    await this.#db.updateTable('sessions').set({ ended_at: sql<Date>`clock_timestamp()` })
      .where('id', '=', sessionId).where('ended_at', 'is', null).execute()
    this.#learn(sessionId)
  }

  /** Reads the sessions ended since the last read; the first read looks back `keepMs`. */
  async poll (): Promise<void> {
    const started = Date.now()
    // Looked back as a duration on the database's clock, so the two clocks need not agree; a few
    // seconds more than since the last read, for a logout that committed a little late.
    const lookBackMs = this.#lastRead === undefined ? this.#keepMs : started - this.#lastRead + 5_000
    const rows = await this.#db.selectFrom('sessions').select('id')
      .where('ended_at', '>', sql<Date>`now() - make_interval(secs => ${lookBackMs / 1000})`).execute()
    this.#lastRead = started
    for (const { id } of rows) this.#learn(id)
    const before = started - this.#keepMs
    for (const [id, at] of this.#ended) if (at < before) this.#ended.delete(id)
  }

  #learn (sessionId: string): void {
    if (this.#ended.has(sessionId)) return
    this.#ended.set(sessionId, Date.now())
    for (const listener of this.#listeners) listener(sessionId)
  }
}
