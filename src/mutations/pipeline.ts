import { settled } from '../core/settled.js'
import type { Db, Trx } from '../db/schema.js'
import { storeBlobs, type BlobContent } from '../db/queries.js'
import type { Actor } from '../accounts/auth.js'
import { toAppError, type AppError } from '../core/errors.js'
import { isUuid } from '../core/validation.js'
import { claimKey, findResponse, Replay, requestHash, storeResponse, storeResponses, type KeyedResponse } from './idempotency.js'
import { ACTIVITY_ROWS_PER_STATEMENT, insertActivityRows, type ActivityRecorder, type NewActivity } from './activity.js'
import { approxBytes, GroupCommit, type GroupCommitOptions } from './group-commit.js'
import type { Change } from '../../schemas/files.js'

/**
 * The one way a mutation runs, whatever it changes: Idempotency-Key replay, an activity entry
 * (in the write's transaction on success, after the rollback on failure), and publishing its
 * changes once committed. The file service describes each mutation (a `MutationSpec`); REST
 * routes and WebSocket RPC both reach it through the service. Mutations of one workspace that
 * arrive together share a transaction, each keeping its own outcome (group commit,
 * ./group-commit.ts, reached through `TransactionHooks.transaction`).
 */

/** A response: its status and body, as REST sends them and RPC answers the body. */
export interface Result<T> {
  statusCode: number
  body: T
}

export interface MutationMeta {
  /** Idempotency-Key: replays the first response; also recorded as the changes' opId */
  opId?: string | null
  /** the request, for the activity log: `PUT /v1/…` (REST), `RPC files.write` (WebSocket) */
  context?: string | null
}

/** Hooks that run inside the write transaction (idempotency keys, activity entries). */
export interface TransactionHooks<R> {
  /** first, before the workspace is locked */
  begin?: (trx: Trx) => Promise<void>
  /** last, after every change is recorded and before commit */
  beforeCommit?: (trx: Trx, result: R) => Promise<void>
  /**
   * How to run the transaction: the pipeline's group commit (src/mutations/group-commit.ts), where
   * `work` may share one transaction with other requests to the same workspace (and may run more
   * than once: it must leave nothing behind but its statements); resolves once committed. Without it, a transaction of its own (`transactionOf`).
   * `blobs`, the contents `work` writes, are stored before it runs (a group stores all its
   * members' in one statement, before its first member).
   */
  transaction?: Runner
}

export type Runner = <X>(work: (trx: Trx) => Promise<X>, blobs?: BlobContent[]) => Promise<X>

/** The transaction runner a mutation's `run` uses: the hooks' (the group commit), else its own. */
export function transactionOf (db: Db, hooks: { transaction?: Runner }): Runner {
  return hooks.transaction ?? (async (work, blobs = []) => await db.transaction().execute(async trx => {
    await storeBlobs(trx, blobs)
    return await work(trx)
  }))
}

/** One kind of mutation: how to run it, what it answers, and how the activity log names it. */
export interface MutationSpec<R, T> {
  type: string
  workspaceId: string
  op?: string | null
  path?: string | null
  newPath?: string | null
  sessionId?: string | undefined
  /** session ids its parts name (a batch's operations' `sessionId`): each must be the caller's too */
  sessionIds?: Array<string | undefined>
  /** what the request asks for: the Idempotency-Key's request hash */
  params: unknown
  run: (hooks: TransactionHooks<R>) => Promise<R>
  respond: (result: R) => Result<T>
  changes: (result: R) => Change[]
  revision: (result: R) => number
  details?: (result: R) => Record<string, unknown>
}

/** A mutation refused before it ran (bad body, path or params), as the activity log names it. */
export interface Rejected {
  type: string
  workspaceId: string | null
  op?: string | null
  path?: string | null
  /** the request, as `MutationMeta.context` */
  context?: string | null
}

/** Where committed changes go to reach subscribers (the fan-out). */
export interface ChangePublisher {
  publishChanges: (workspaceId: string, changes: Change[]) => Promise<void>
}

export interface MutationPipeline {
  run: <R, T>(actor: Actor, spec: MutationSpec<R, T>, meta: MutationMeta) => Promise<Result<T>>
  rejected: (actor: Actor, mutation: Rejected, err: unknown, durationMs: number) => void
  /** Resolves once no mutation is running, or after `waitMs` (core/settled.ts: on shutdown). */
  settled: (waitMs: number) => Promise<void>
}

/** Failures already in the activity log (recorded by `runMutation`), so they are recorded once. */
const recordedFailures = new WeakSet<object>()

/** What a mutation writes last, with the other members of its group (one statement each for all). */
interface MemberRecords {
  activity: NewActivity
  /** under an Idempotency-Key */
  response: KeyedResponse | null
}

interface PipelineDeps {
  db: Db
  activity: ActivityRecorder
  publisher: ChangePublisher
  groups: GroupCommit<MemberRecords>
}

export function createMutationPipeline (deps: Omit<PipelineDeps, 'groups'> & { groupCommit?: GroupCommitOptions }): MutationPipeline {
  const groups = new GroupCommit<MemberRecords>(deps.db, {
    ...deps.groupCommit ?? { enabled: false, maxMembers: 1, maxBytes: 0, maxMs: 0 },
    writeRecords: async (trx, records, flush) => {
      // (with the group's deferred changes when it has any: one statement)
      const rows = deps.activity.rows(records.map(r => r.activity))
      if (rows.length > ACTIVITY_ROWS_PER_STATEMENT || !await flush(rows)) await insertActivityRows(trx, rows)
      await storeResponses(trx, records.flatMap(r => r.response ?? []))
    }
  })
  const all = { ...deps, groups }
  const running = new Set<Promise<unknown>>()
  return {
    run: async (actor, spec, meta) => {
      const run = runMutation(all, actor, spec, meta)
      running.add(run)
      try {
        return await run
      } finally {
        running.delete(run)
      }
    },
    rejected: (actor, mutation, err, durationMs) => { recordRejected(deps.activity, actor, mutation, err, durationMs) },
    settled: async waitMs => { await settled(running, waitMs) }
  }
}

async function runMutation<R, T> (deps: PipelineDeps, actor: Actor, spec: MutationSpec<R, T>, meta: MutationMeta): Promise<Result<T>> {
  const { db, activity, publisher, groups } = deps
  const started = performance.now()
  const key = meta.opId ?? null
  const hash = key === null ? '' : requestHash({ type: spec.type, workspaceId: spec.workspaceId, params: spec.params })
  const entry = (status: number, extra: Partial<NewActivity>): NewActivity => ({
    sessionId: spec.sessionId ?? actor.sessionId,
    userId: actor.userId,
    workspaceId: spec.workspaceId,
    type: spec.type,
    op: spec.op ?? null,
    path: spec.path ?? null,
    newPath: spec.newPath ?? null,
    status,
    durationMs: performance.now() - started,
    context: meta.context ?? null,
    ...extra
  })
  // Before anything can be recorded under them, and outside the try: refused, nothing is
  // recorded under the named session (the route records the refusal under the caller's own).
  await claimNamedSessions(activity, actor, spec)
  let response: Result<T> | undefined
  let logged: NewActivity | undefined
  try {
    if (key !== null) {
      const stored = await findResponse(db, actor.userId, key, hash)
      if (stored !== undefined) return stored as Result<T>
    }
    // After commit, once, in the group's order: the Markdown mirror and publishing (at most
    // once; subscribers fill any gap from the database).
    let afterCommit = (): void => {}
    let committed = false
    const onCommit = (): void => {
      if (committed) return
      committed = true
      afterCommit()
    }
    const result = await spec.run({
      begin: async trx => { if (key !== null) await claimKey(trx, actor.userId, key, hash) },
      // (its records are written with the group's: `records` below)
      beforeCommit: async (_trx, r) => {
        const res = spec.respond(r)
        const log = entry(res.statusCode, { revision: spec.revision(r), details: spec.details?.(r) ?? null, at: new Date() })
        response = res
        logged = log
        const changes = spec.changes(r)
        afterCommit = () => {
          activity.committed(log)
          void publisher.publishChanges(spec.workspaceId, changes)
        }
      },
      transaction: async (work, blobs) => await groups.run(spec.workspaceId, {
        work,
        ...(blobs === undefined ? {} : { blobs }),
        reads: [spec.path, spec.newPath].filter(p => typeof p === 'string'),
        user: actor.userId,
        records: () => logged === undefined || response === undefined
          ? undefined
          : { activity: logged, response: key === null ? null : { userId: actor.userId, key, hash, response } },
        bytes: approxBytes(spec.params),
        key: key === null ? null : `${actor.userId}\u0000${key}`,
        committed: onCommit
      })
    })
    if (logged === undefined) void publisher.publishChanges(spec.workspaceId, spec.changes(result)) // nothing recorded (a dry run)
    else onCommit() // (done already, unless `run` used a transaction of its own)
    return response ?? spec.respond(result)
  } catch (err) {
    if (err instanceof Replay) return err.response as Result<T>
    const e = toAppError(err)
    if (isRecorded(e.statusCode)) void activity.record(entry(e.statusCode, failure(e, err)))
    if (typeof err === 'object' && err !== null) recordedFailures.add(err)
    if (key !== null && e.statusCode < 500) {
      await storeResponse(db, actor.userId, key, hash, { statusCode: e.statusCode, body: e.toJSON() }).catch(() => {})
    }
    throw err
  }
}

/**
 * Refusals for load — 429 (a rate limit, the new-session bound, a socket's message rate) and 503
 * (overload shedding, the database unavailable) — are not recorded: they are the server
 * protecting itself, and recording each one would let a flood of refused requests cost disk
 * (issue "Hardening", finding 5). The client's answer says what happened.
 */
function isRecorded (status: number): boolean {
  return status !== 429 && status !== 503
}

/** A session id the request names must be the caller's (claimed on its first use): else 403. */
async function claimNamedSessions (activity: ActivityRecorder, actor: Actor, spec: { sessionId?: string | undefined, sessionIds?: Array<string | undefined> }): Promise<void> {
  const named = new Set([spec.sessionId, ...(spec.sessionIds ?? [])].filter((s): s is string => s !== undefined && s !== actor.sessionId))
  for (const sid of named) await activity.claim(actor.userId, sid)
}

/**
 * Records a mutation that failed before it reached the service (the request's schema, its
 * path, its content type): every mutation, success or failure, is in its session's log.
 */
function recordRejected (activity: ActivityRecorder, actor: Actor, mutation: Rejected, err: unknown, durationMs: number): void {
  if (typeof err === 'object' && err !== null && recordedFailures.has(err)) return
  const e = toAppError(err)
  if (!isRecorded(e.statusCode)) return
  void activity.record({
    sessionId: actor.sessionId,
    userId: actor.userId,
    workspaceId: isUuid(mutation.workspaceId) ? mutation.workspaceId : null,
    type: mutation.type,
    op: typeof mutation.op === 'string' ? mutation.op.slice(0, 100) : null,
    path: typeof mutation.path === 'string' ? mutation.path.slice(0, 1100).replaceAll('\u0000', '\ufffd') : null,
    newPath: null,
    status: e.statusCode,
    durationMs,
    context: mutation.context ?? null,
    ...failure(e, err)
  })
}

/** A failure's code and message, and the thrown error's stack (the recorder keeps it for a 5xx in development only). */
function failure (e: AppError, err: unknown): Pick<NewActivity, 'code' | 'message' | 'stack'> {
  return { code: e.code, message: e.message, stack: err instanceof Error ? err.stack ?? null : null }
}
