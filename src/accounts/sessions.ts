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
    const sid = sessionId.toLowerCase()
    let owner = this.#owners.get(sid)
    if (owner === undefined) {
      owner = await this.#ownerOf(sid) ?? await this.#create(userId.toLowerCase(), sid)
      this.#owners.set(sid, owner)
    }
    if (owner !== userId.toLowerCase()) throw errors.forbidden(`session ${sid} belongs to another user`)
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
