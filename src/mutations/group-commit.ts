import { sql, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely'
import { AppError, errors } from '../core/errors.js'
import type { Insertable } from 'kysely'
import type { ActivityTable, Db, Trx } from '../db/schema.js'
import { heldHeads, restoreHeads, storeBlobs, type BlobContent } from '../db/queries.js'

/** Sent without parameters, so as one simple query: two statements in one round trip. */
const SAVEPOINT = sql`savepoint member`
const NEXT_SAVEPOINT = sql`release savepoint member; savepoint member`
const ROLLBACK_TO_SAVEPOINT = sql`rollback to savepoint member`

/**
 * Group commit per workspace (issue 11, scope 1). Every write to a workspace takes its row lock
 * and holds it through its commit's WAL flush, so one transaction per request caps a hot
 * workspace at 1 / (lock hold time) writes per second. Here the mutations for one workspace that
 * arrive at this instance while a transaction for it is in flight wait, and the next transaction
 * runs them all: one BEGIN, one lock, one COMMIT (one flush) for up to `maxMembers` requests.
 *
 * Each member keeps all of its own semantics:
 * - members run in arrival order; the workspace lock is taken by the first and each later one
 *   reads the head the earlier ones left (its own If-Match, its own gap-free revisions, its own
 *   idempotency claim, activity entry and stored response);
 * - what can be written for all members at once is: the blobs of the whole group in one statement
 *   before the first member (content-addressed, so a member that then fails leaves only an
 *   unreferenced blob, which retention deletes), and the records of the members that ran
 *   (activity entries, stored responses: `records`, `writeRecords`) in one statement each before
 *   the COMMIT; the later members read the head from the transaction (db/queries.ts
 *   `lockWorkspace`) instead of locking again. So each member makes only its own reads and writes,
 *   and fewer still with `decorate` (files/entry-memo.ts: the entries the members name read once,
 *   and an update's statements left to the group, sent for all of them at once: `GroupView`);
 * - savepoints only where needed: a member with an Idempotency-Key (its claim is a write), or one
 *   that is `careful` (below), runs in a SAVEPOINT of its own and, failing, is rolled back to it.
 *   The others run without one: their checks come before their statements, so one that is
 *   refused (412, 409, 404…) wrote nothing and its neighbours go on. `WriteWatch` sees whether a
 *   member wrote; if one without a savepoint fails after writing, or with a database error (the
 *   transaction is then aborted), the group is rolled back and all of it goes back to the queue,
 *   in order, that member `careful`. Nobody had been answered, so running again is invisible;
 * - every member is answered once the group's fate is known: its error, or its value after the
 *   COMMIT succeeded (a 2xx still means committed), so no answer shows another request's
 *   uncommitted write; the `committed` callbacks (activity mirror, publishing) run right after
 *   the COMMIT, in revision order. A request alone in its group (nothing else was waiting: a quiet
 *   workspace) runs without a savepoint, and a group in which every member failed is rolled back;
 * - if BEGIN, a savepoint command or COMMIT fails (connection lost, serialization), nothing of the
 *   group was committed: every member that ran gets that error, as it would have alone, and
 *   those that had not run yet go to the next group;
 * - if a member's statement is cancelled (57014: DB_STATEMENT_TIMEOUT_MS), that member fails
 *   (503), what ran before it commits (or, if it had no savepoint, runs again in the next group),
 *   and the members not run yet fail at once with 503 `UNAVAILABLE` (nothing of them applied,
 *   nothing recorded under their Idempotency-Key): the database is stalling, and they have
 *   already waited as long as the cancelled one.
 *
 * Bounds: `maxMembers` and `maxBytes` (request bodies) per group, and no member is started once
 * the group has held the lock (from the end of its first member) for `maxMs`, so a group holds the lock (and its connection, watched by
 * DB_TRANSACTION_TIMEOUT_MS) not much longer than one request would. A request whose
 * Idempotency-Key is already in the group waits for the next one, so it blocks on the committed
 * (or rolled back) claim exactly as it would alone. The queue is in-process, per instance;
 * across instances the workspace row lock still orders the groups.
 */

export interface GroupCommitOptions<R = never> {
  /** false: every mutation is its own transaction (as before issue 11) */
  enabled: boolean
  maxMembers: number
  maxBytes: number
  maxMs: number
  /** told each transaction's number of members that ran (1: alone), e.g. for a histogram */
  onGroup?: (size: number) => void
  /**
   * writes the records of the members that ran (in their order), before the COMMIT; `flush`
   * sends activity rows with the group's deferred writes, if it has any (one statement)
   */
  writeRecords?: (trx: Trx, records: R[], flush: Flush) => Promise<void>
  /** the group's transaction as its members get it, given what they read (files/entry-memo.ts) */
  decorate?: (trx: Trx, workspaceId: string, wanted: Wanted) => GroupView
}

/** What a group's members will read under the lock: the paths they name, the users they act for. */
export interface Wanted {
  paths: string[]
  users: string[]
}

/**
 * The group's transaction as its members see it (`decorate`), and the writes they may leave to
 * the group: a member not in a savepoint may defer a write, which the group then sends with the
 * others' in one statement, before a member sends any statement of its own (`WritesDeferred`)
 * and before the COMMIT.
 */
export interface GroupView {
  trx: Trx
  /** whether the member about to run may defer its writes; resets `deferred` */
  allowDeferring: (allowed: boolean) => void
  /** whether the member that ran last deferred a write */
  deferred: () => boolean
  /** sends the deferred writes (nothing when there are none) */
  flush: Flush
}

/**
 * Sends the deferred writes, with `activity` rows in the same statement; resolves false when
 * there were none (nothing sent: the rows are the caller's to insert).
 */
export type Flush = (activity?: Array<Insertable<ActivityTable>>) => Promise<boolean>

const nothingDeferred: Flush = async () => false

/**
 * Thrown, before anything is sent, by a statement a member sends while writes of earlier members
 * are deferred: the group sends them and runs that member again from its start.
 */
export class WritesDeferred extends Error {
  constructor () {
    super('writes of the group are deferred: send them first')
  }
}

export interface GroupMember<X, R> {
  /** what the member does in the transaction; may run more than once (the group ran again) */
  work: (trx: Trx) => Promise<X>
  /** the contents `work` writes: stored before it runs */
  blobs?: BlobContent[]
  /** the paths it will read, a hint (`decorate`) */
  reads?: string[]
  /** the user it acts for, whose role it will check, a hint (`decorate`) */
  user?: string
  /** once `work` succeeded: what it leaves to be written with the group's (`writeRecords`) */
  records?: () => R | undefined
  /** the size of its request body, for the group's byte bound */
  bytes: number
  /** user and Idempotency-Key: at most one member per key in a group */
  key: string | null
  /** after the commit, before the member is answered; in the group's order; must not throw */
  committed: () => void
}

interface Queued<R> {
  member: GroupMember<unknown, R>
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  /** already run once more after a deadlock */
  retried?: boolean
  /** runs in a savepoint of its own (it failed without one, after writing) */
  careful?: boolean
}

export class GroupCommit<R = never> {
  readonly #db: Db
  readonly #opts: GroupCommitOptions<R>
  /** a workspace's waiting members; present while a group of it is in flight on this instance */
  readonly #queues = new Map<string, Array<Queued<R>>>()

  constructor (db: Db, opts: GroupCommitOptions<R>) {
    this.#db = db
    this.#opts = opts
  }

  /** Runs `work` in a transaction for `workspaceId`, alone or with others; resolves once committed. */
  async run<X>(workspaceId: string, member: GroupMember<X, R>): Promise<X> {
    if (!this.#opts.enabled) {
      this.#opts.onGroup?.(1)
      const value = await this.#db.transaction().execute(async trx => {
        await storeBlobs(trx, member.blobs ?? [])
        const v = await member.work(trx)
        await this.#writeRecords(trx, [member], nothingDeferred)
        return v
      })
      member.committed()
      return value
    }
    return await new Promise<X>((resolve, reject) => {
      const queued: Queued<R> = { member: member as GroupMember<unknown, R>, resolve: resolve as (v: unknown) => void, reject }
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

  async #writeRecords (trx: Trx, members: Array<GroupMember<unknown, R>>, flush: Flush): Promise<void> {
    const records = members.flatMap(m => {
      const r = m.records?.()
      return r === undefined ? [] : [r]
    })
    if (records.length > 0) await this.#opts.writeRecords?.(trx, records, flush)
  }

  /**
   * Runs the workspace's groups one after the other, each overlapping the next: once a group has
   * run its members and goes on to commit, the next one is taken and starts (BEGIN, its blobs, its
   * lock's statement, which waits in PostgreSQL until the first commits). The lock then passes
   * from one group to the next inside PostgreSQL, without three round trips through this process
   * in between. A group is taken only once the one before has handed over (so it waits for at
   * most that one's commit), and answers its members only after the one before has answered its
   * own, so events still go out in revision order.
   */
  async #drain (workspaceId: string, queue: Array<Queued<R>>): Promise<void> {
    let previous: Promise<void> = Promise.resolve()
    try {
      for (;;) {
        if (queue.length === 0) {
          await previous
          if (queue.length === 0) break
        }
        const group = this.#take(queue)
        const handoff = new Handoff<Array<Queued<R>>>()
        const running = this.#commitGroup(workspaceId, group, previous, handoff)
        running.then(leftover => handoff.pass(leftover), err => handoff.fail(err))
        previous = running.then(() => {}, () => {})
        queue.unshift(...await handoff.passed)
      }
    } catch (err) {
      for (const q of queue.splice(0)) q.reject(err) // (a bug: never leave a request waiting)
    } finally {
      this.#queues.delete(workspaceId)
    }
  }

  /** The next group: arrival order, up to the bounds, stopping before a key already in it. */
  #take (queue: Array<Queued<R>>): Array<Queued<R>> {
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

  /**
   * Runs a member's work; when it sends a statement while earlier members' writes are deferred,
   * sends those (one statement) and runs it again: it had sent nothing yet.
   */
  async #runMember (member: GroupMember<unknown, R>, view: GroupView, watch: WriteWatch, mayDefer: boolean): Promise<unknown> {
    for (;;) {
      view.allowDeferring(mayDefer)
      watch.wrote = false
      try {
        return await member.work(view.trx)
      } catch (err) {
        if (!(err instanceof WritesDeferred)) throw err
        // (its own deferred write would be sent and then made again: a bug, so the group runs again)
        if (view.deferred()) throw new Error('a member sent a statement after deferring its write')
      }
      await view.flush()
    }
  }

  /**
   * Runs one group; returns the members that go to the front of the queue, for the next group,
   * and hands them over (`handoff`) as soon as it knows them, before it commits. It answers its
   * members once the group before it (`previous`) has answered its own.
   */
  async #commitGroup (workspaceId: string, group: Array<Queued<R>>, previous: Promise<void>, handoff: Handoff<Array<Queued<R>>>): Promise<Array<Queued<R>>> {
    let controlled: Awaited<ReturnType<ReturnType<Db['startTransaction']>['execute']>>
    try {
      controlled = await this.#db.startTransaction().execute()
    } catch (err) {
      for (const q of group) q.reject(err)
      return []
    }
    const rollback = async (): Promise<void> => { await controlled.rollback().execute().catch(() => {}) }
    try {
      await storeBlobs(controlled, group.flatMap(q => q.member.blobs ?? []))
    } catch (err) {
      await rollback()
      for (const q of group) q.reject(err)
      return []
    }
    // The members' view of the transaction: the same connection, with a watch on what they write
    // (and what `decorate` adds). Savepoint commands go through it too, so that its plugins see them.
    const watch = new WriteWatch()
    const watched = controlled.withPlugin(watch)
    const wanted = { paths: group.flatMap(q => q.member.reads ?? []), users: group.flatMap(q => q.member.user ?? []) }
    const view: GroupView = this.#opts.decorate?.(watched, workspaceId, wanted) ??
      { trx: watched, allowDeferring: () => {}, deferred: () => false, flush: nothingDeferred }
    const { trx } = view
    // Each member that ran, in order: its value, or its error (answered once the group's fate is known).
    const ran: Array<{ q: Queued<R>, ok: true, value: unknown } | { q: Queued<R>, ok: false, err: unknown }> = []
    const retry: Array<Queued<R>> = []
    let rest: Array<Queued<R>> = []
    let broken: unknown = null
    // Counted from when the first member is done (the lock is held from then on).
    let locked = Infinity
    // A request alone (nothing else was waiting) needs no savepoint: if it fails, so does the
    // transaction, which is then rolled back.
    const alone = group.length === 1
    let savepoint = false
    for (const [i, q] of group.entries()) {
      if (performance.now() - locked > this.#opts.maxMs) {
        rest = group.slice(i)
        break
      }
      const careful = !alone && (q.careful === true || q.member.key !== null)
      try {
        // One round trip: the last careful member's savepoint is released as this one's is set
        // (after what the members before it deferred, which it must not roll back).
        if (careful) {
          await view.flush()
          await (savepoint ? NEXT_SAVEPOINT : SAVEPOINT).execute(trx)
        }
        savepoint ||= careful
      } catch (err) {
        broken = err
        rest = group.slice(i)
        break
      }
      const held = heldHeads(trx)
      try {
        ran.push({ q, ok: true, value: await this.#runMember(q.member, view, watch, !careful) })
      } catch (err) {
        const code = (err as { code?: unknown }).code
        if (!alone && !careful && (watch.wrote || view.deferred() || !(err instanceof AppError))) {
          // It may have written, or the database may have aborted the transaction, and it had no
          // savepoint: nothing of this group is committed. Every member goes back to the queue
          // in order, this one to run in a savepoint; none has been answered yet.
          await rollback()
          this.#opts.onGroup?.(ran.length + retry.length + 1)
          if (code === '57014') {
            // (cancelled: as below; the members that ran, run again)
            q.reject(err)
            for (const unrun of group.slice(i + 1)) unrun.reject(errors.unavailable('the database did not answer in time; nothing of this request was applied'))
            return [...retry, ...ran.map(r => r.q)]
          }
          if (code === '40P01') {
            if (q.retried === true) {
              q.reject(err)
              return [...retry, ...ran.map(r => r.q), ...group.slice(i + 1)]
            }
            q.retried = true
          }
          q.careful = true
          return [...retry, ...ran.map(r => r.q), q, ...group.slice(i + 1)]
        }
        try {
          if (careful) await ROLLBACK_TO_SAVEPOINT.execute(trx)
          // (the row locks taken since the savepoint are released with it)
          if (careful || alone) restoreHeads(trx, held)
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
        if (code === '40P01' && q.retried !== true) {
          q.retried = true
          retry.push(q)
        } else {
          ran.push({ q, ok: false, err })
        }
        // Cancelled (DB_STATEMENT_TIMEOUT_MS, or the watchdog, which terminates the connection if
        // it is still held a second later): commit what ran; the members not run yet fail at
        // once with 503 (they have waited as long as the cancelled one: queueing them again
        // behind the same stall would make them wait as long once more).
        if (code === '57014') {
          for (const unrun of group.slice(i + 1)) unrun.reject(errors.unavailable('the database did not answer in time; nothing of this request was applied'))
          break
        }
      } finally {
        if (i === 0) locked = performance.now()
      }
    }
    this.#opts.onGroup?.(ran.length + retry.length)
    const leftover = [...retry, ...rest]
    // (from here on, this group only writes in its own transaction and commits: the next may start)
    handoff.pass(leftover)
    const done = ran.flatMap(r => r.ok ? [r] : [])
    if (broken === null && done.length === 0) {
      // Nothing to commit (every member failed, or none ran): what is left of them goes.
      await rollback()
    } else if (broken === null) {
      try {
        await this.#writeRecords(controlled, done.map(({ q }) => q.member), view.flush)
        await view.flush()
        await controlled.commit().execute()
      } catch (err) {
        broken = err
      }
    }
    if (broken !== null) await rollback()
    await previous
    for (const r of ran) {
      if (!r.ok) {
        r.q.reject(r.err)
      } else if (broken !== null) {
        // Nothing was committed: each member that ran gets the error it would have got alone.
        r.q.reject(broken)
      } else {
        try { r.q.member.committed() } catch {}
        r.q.resolve(r.value)
      }
    }
    return leftover
  }
}

/** A value passed once from a running group to the loop that starts the next (`#drain`). */
class Handoff<T> {
  readonly passed: Promise<T>
  pass: (value: T) => void = () => {}
  fail: (err: unknown) => void = () => {}

  constructor () {
    this.passed = new Promise<T>((resolve, reject) => {
      this.pass = resolve
      this.fail = reject
    })
  }
}

/**
 * Sees whether a member wrote: Kysely hands every query it compiles to its plugins first. Any
 * statement that is not a plain SELECT counts (a raw one too); a SELECT … FOR UPDATE writes
 * nothing (the lock it takes is the group's to hold anyway). The queries compiled once
 * (db/compiled.ts) are not seen, which is why it only takes reads.
 */
class WriteWatch implements KyselyPlugin {
  wrote = false

  transformQuery (args: PluginTransformQueryArgs): RootOperationNode {
    if (args.node.kind !== 'SelectQueryNode' || args.node.with !== undefined) this.wrote = true
    return args.node
  }

  async transformResult (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
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
