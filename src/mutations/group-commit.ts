import { sql } from 'kysely'
import type { Db, Trx } from '../db/schema.js'

/**
 * Group commit per workspace (issue 11, scope 1). Every write to a workspace takes its row lock
 * and holds it through its commit's WAL flush, so one transaction per request caps a hot
 * workspace at 1 / (lock hold time) writes per second. Here the mutations for one workspace that
 * arrive at this instance while a transaction for it is in flight wait, and the next transaction
 * runs them all: one BEGIN, one lock, one COMMIT (one flush) for up to `maxMembers` requests.
 *
 * Each member keeps all of its own semantics:
 * - it runs inside its own SAVEPOINT, in arrival order; the workspace lock is taken by the first
 *   and each later one reads the head the earlier ones left (its own If-Match, its own gap-free
 *   revisions, its own idempotency claim, activity entry and stored response);
 * - a member that fails (412, 409, 400, 413, a replay…) is rolled back to its savepoint and
 *   answered at once with its own error; its neighbours go on;
 * - the others are answered only after the COMMIT succeeded (a 2xx still means committed); their
 *   `committed` callbacks (activity mirror, publishing) run right after it, in revision order;
 * - if BEGIN, a savepoint command or COMMIT fails (connection lost, serialization), nothing of the
 *   group was committed: every member that had run gets that error, as it would have alone, and
 *   those that had not run yet go to the next group.
 *
 * Bounds: `maxMembers` and `maxBytes` (request bodies) per group, and no member is started once
 * the group has held the lock (from the end of its first member) for `maxMs`, so a group holds the lock (and its connection, watched by
 * DB_TRANSACTION_TIMEOUT_MS) not much longer than one request would. A request whose
 * Idempotency-Key is already in the group waits for the next one, so it blocks on the committed
 * (or rolled back) claim exactly as it would alone. The queue is in-process, per instance;
 * across instances the workspace row lock still orders the groups.
 */

export interface GroupCommitOptions {
  /** false: every mutation is its own transaction (as before issue 11) */
  enabled: boolean
  maxMembers: number
  maxBytes: number
  maxMs: number
}

export interface GroupMember<X> {
  /** what the member does in the transaction (inside its savepoint) */
  work: (trx: Trx) => Promise<X>
  /** the size of its request body, for the group's byte bound */
  bytes: number
  /** user and Idempotency-Key: at most one member per key in a group */
  key: string | null
  /** after the commit, before the member is answered; in the group's order; must not throw */
  committed: () => void
}

interface Queued {
  member: GroupMember<unknown>
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  /** already run once more after a deadlock */
  retried?: boolean
}

export class GroupCommit {
  readonly #db: Db
  readonly #opts: GroupCommitOptions
  /** a workspace's waiting members; present while a group of it is in flight on this instance */
  readonly #queues = new Map<string, Queued[]>()

  constructor (db: Db, opts: GroupCommitOptions) {
    this.#db = db
    this.#opts = opts
  }

  /** Runs `work` in a transaction for `workspaceId`, alone or with others; resolves once committed. */
  async run<X>(workspaceId: string, member: GroupMember<X>): Promise<X> {
    if (!this.#opts.enabled) {
      const value = await this.#db.transaction().execute(member.work)
      member.committed()
      return value
    }
    return await new Promise<X>((resolve, reject) => {
      const queued: Queued = { member: member as GroupMember<unknown>, resolve: resolve as (v: unknown) => void, reject }
      const queue = this.#queues.get(workspaceId)
      if (queue !== undefined) {
        queue.push(queued)
        return
      }
      // Nothing in flight: this one starts a group at once (alone); who comes meanwhile joins the next.
      const fresh = [queued]
      this.#queues.set(workspaceId, fresh)
      void this.#drain(workspaceId, fresh)
    })
  }

  async #drain (workspaceId: string, queue: Queued[]): Promise<void> {
    try {
      while (queue.length > 0) {
        const group = this.#take(queue)
        queue.unshift(...await this.#commitGroup(group))
      }
    } catch (err) {
      for (const q of queue.splice(0)) q.reject(err) // (a bug: never leave a request waiting)
    } finally {
      this.#queues.delete(workspaceId)
    }
  }

  /** The next group: arrival order, up to the bounds, stopping before a key already in it. */
  #take (queue: Queued[]): Queued[] {
    const keys = new Set<string>()
    let bytes = 0
    let n = 0
    for (const q of queue) {
      const { key } = q.member
      if (n >= this.#opts.maxMembers) break
      if (n > 0 && (bytes + q.member.bytes > this.#opts.maxBytes || (key !== null && keys.has(key)))) break
      if (key !== null) keys.add(key)
      bytes += q.member.bytes
      n++
    }
    return queue.splice(0, n)
  }

  /** Runs one group; returns the members that go to the front of the queue, for the next group. */
  async #commitGroup (group: Queued[]): Promise<Queued[]> {
    let trx: Awaited<ReturnType<ReturnType<Db['startTransaction']>['execute']>>
    try {
      trx = await this.#db.startTransaction().execute()
    } catch (err) {
      for (const q of group) q.reject(err)
      return []
    }
    const done: Array<{ q: Queued, value: unknown }> = []
    const retry: Queued[] = []
    let rest: Queued[] = []
    let broken: unknown = null
    // Counted from when the first member is done (the lock is held from then on).
    let locked = Infinity
    for (const [i, q] of group.entries()) {
      if (performance.now() - locked > this.#opts.maxMs) {
        rest = group.slice(i)
        break
      }
      try {
        await sql`savepoint member`.execute(trx)
      } catch (err) {
        broken = err
        rest = group.slice(i)
        break
      }
      let value: unknown
      try {
        value = await q.member.work(trx)
      } catch (err) {
        try {
          await sql`rollback to savepoint member`.execute(trx)
        } catch (rollbackErr) {
          broken = rollbackErr
          q.reject(err)
          rest = group.slice(i + 1)
          break
        }
        // A deadlock (e.g. its key's claim waited for another instance's request that waits for
        // this workspace's lock, a cycle that needs the group: alone, the claim comes before the
        // lock): PostgreSQL broke it by failing this statement. It runs once more, first in the
        // next group, where it claims its key before the lock.
        const code = (err as { code?: unknown }).code
        if (code === '40P01' && q.retried !== true) {
          q.retried = true
          retry.push(q)
        } else {
          q.reject(err)
        }
        // Cancelled (DB_STATEMENT_TIMEOUT_MS, or the watchdog, which terminates the connection if
        // it is still held a second later): commit what ran; the rest wait for the next group.
        if (code === '57014') {
          rest = group.slice(i + 1)
          break
        }
        continue
      } finally {
        if (i === 0) locked = performance.now()
      }
      done.push({ q, value })
      try {
        await sql`release savepoint member`.execute(trx)
      } catch (err) {
        broken = err
        rest = group.slice(i + 1)
        break
      }
    }
    if (broken === null) {
      try {
        await trx.commit().execute()
      } catch (err) {
        broken = err
      }
    }
    if (broken !== null) {
      // Nothing was committed: each member that ran gets the error it would have got alone.
      await trx.rollback().execute().catch(() => {})
      for (const { q } of done) q.reject(broken)
    } else {
      for (const { q, value } of done) {
        try { q.member.committed() } catch {}
        q.resolve(value)
      }
    }
    return [...retry, ...rest]
  }
}

/** Roughly the bytes of a request's parameters (its strings), for the group's byte bound. */
export function approxBytes (value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length
  if (depth > 8 || value === null || typeof value !== 'object') return 8
  let n = 0
  for (const v of Array.isArray(value) ? value : Object.values(value)) n += approxBytes(v, depth + 1)
  return n
}
