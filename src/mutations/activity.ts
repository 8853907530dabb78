import type { Insertable } from 'kysely'
import type { ActivityRow, ActivityTable, Db, Executor } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { errors } from '../core/errors.js'
import { rowsJson, compiledPerShape, recordsOf, type ColumnTypes } from '../db/compiled.js'
import { mdCode, mdFence, mdText } from './markdown.js'
import type { ReadLog } from './read-log.js'
import type { ActivityPage, ActivityRecord, SessionSummary } from '../../schemas/sessions.js'

/**
 * The activity log: what each session did. A successful change writes its entry in its own
 * transaction; a failure is written after the rollback.
 */

/** The activity type of each kind of mutation: the service, REST routes and RPC all name it so. */
export const MutationType = {
  write: 'file.write',
  delete: 'file.delete',
  operation: 'operation',
  batch: 'batch',
  revert: 'revert',
  /** an archive applied as one batch (src/archive) */
  import: 'archive.import'
} as const
export type MutationType = typeof MutationType[keyof typeof MutationType]

/** An HTTP request as an entry's context: `<METHOD> <URL>` (the URL as sent, path and query). */
export function requestContext (request: { method: string, url: string }): string {
  return `${request.method} ${request.url}`
}

/** A mutating HTTP request's meta: its Idempotency-Key (if any) and its context. */
export function requestMeta (request: { method: string, url: string, headers: Record<string, string | string[] | undefined> }): { opId: string | null, context: string } {
  const key = request.headers['idempotency-key']
  return { opId: typeof key === 'string' ? key : null, context: requestContext(request) }
}

/** An entry to record: what a session did, before it has an id (unset fields are stored as null). */
export interface NewActivity {
  sessionId: string
  userId: string
  workspaceId?: string | null
  type: string
  op?: string | null
  path?: string | null
  newPath?: string | null
  status: number
  code?: string | null
  revision?: number | null
  durationMs: number
  details?: Record<string, unknown> | null
  at?: Date
  /** the request: `PUT /v1/…` over HTTP, `RPC files.write` or `WS subscribe` over a WebSocket */
  context?: string | null
  /** a failure's error message */
  message?: string | null
  /** a failure's stack trace: kept for a 5xx in development only (`ActivityRecorder`) */
  stack?: string | null
}

/**
 * Fixes the entry's time and rounds its duration, in place, before it is stored: the Markdown
 * mirror renders the very object that was inserted, so it matches what log.md reads back.
 */
function settle (e: NewActivity): NewActivity {
  e.at ??= new Date()
  e.durationMs = Math.max(0, Math.round(e.durationMs))
  // A refused request's op and paths are recorded as sent, and PostgreSQL refuses NUL in text (the
  // entry would be lost); a lone surrogate it would store as U+FFFD, as the mirror now shows too.
  if (typeof e.op === 'string') e.op = storable(e.op)
  if (typeof e.path === 'string') e.path = storable(e.path)
  if (typeof e.newPath === 'string') e.newPath = storable(e.newPath)
  if (typeof e.context === 'string') e.context = storable(e.context.slice(0, MAX_CONTEXT))
  if (typeof e.message === 'string') e.message = storable(e.message.slice(0, MAX_MESSAGE))
  if (typeof e.stack === 'string') e.stack = storable(e.stack.slice(0, MAX_STACK))
  return e
}

/** Bounds of the text fields a request's failure brings (a URL is bounded by the header limit, 16 KiB). */
const MAX_CONTEXT = 2048
const MAX_MESSAGE = 2048
const MAX_STACK = 16_384

const storable = (s: string): string => s.replaceAll('\u0000', '\ufffd').toWellFormed()

export async function insertActivity (db: Executor, entry: NewActivity): Promise<void> {
  await db.insertInto('activity').values(activityRow(entry)).execute()
}

/** Many entries in one statement (the reads' queue `ReadLog`). */
export async function insertActivities (db: Executor, entries: NewActivity[]): Promise<void> {
  await insertActivityRows(db, entries.map(activityRow))
}

/** Rows per statement (one JSON parameter, so any number would do: this bounds a statement's size). */
export const ACTIVITY_ROWS_PER_STATEMENT = 1000

export async function insertActivityRows (db: Executor, rows: Array<Insertable<ActivityTable>>): Promise<void> {
  for (let i = 0; i < rows.length; i += ACTIVITY_ROWS_PER_STATEMENT) await insertRows(db, rowsJson(ACTIVITY_COLUMNS, rows.slice(i, i + ACTIVITY_ROWS_PER_STATEMENT)))
}

const insertRows = compiledPerShape((db, rows: string) => db.insertInto('activity').columns(ACTIVITY_COLUMNS.map(([column]) => column)).expression(recordsOf(ACTIVITY_COLUMNS, rows)),
  () => '', rows => [rows])

/** Every column an entry is inserted with, in the order `activityRow` names them, with its type. */
export const ACTIVITY_COLUMNS: ColumnTypes<Insertable<ActivityTable>> = [['session_id', 'uuid'], ['user_id', 'uuid'], ['workspace_id', 'uuid'],
  ['at', 'timestamptz'], ['type', 'text'], ['op', 'text'], ['path', 'text'], ['new_path', 'text'], ['status', 'integer'], ['code', 'text'],
  ['revision', 'bigint'], ['duration_ms', 'integer'], ['details', 'jsonb'], ['context', 'text'], ['message', 'text'], ['stack', 'text']]

function activityRow (entry: NewActivity): Insertable<ActivityTable> {
  const e = settle(entry)
  return {
    session_id: e.sessionId,
    user_id: e.userId,
    workspace_id: e.workspaceId ?? null,
    at: e.at ?? new Date(),
    type: e.type,
    op: e.op ?? null,
    path: e.path ?? null,
    new_path: e.newPath ?? null,
    status: e.status,
    code: e.code ?? null,
    revision: e.revision ?? null,
    duration_ms: e.durationMs,
    details: e.details == null ? null : JSON.stringify(e.details),
    context: e.context ?? null,
    message: e.message ?? null,
    stack: e.stack ?? null
  }
}

export function toActivityRecord (r: ActivityRow): ActivityRecord {
  return {
    id: r.id,
    at: r.at,
    sessionId: r.session_id,
    userId: r.user_id,
    workspaceId: r.workspace_id,
    type: r.type,
    op: r.op,
    path: r.path,
    newPath: r.new_path,
    status: r.status,
    code: r.code,
    revision: r.revision,
    durationMs: r.duration_ms,
    details: r.details,
    context: r.context,
    message: r.message,
    stack: r.stack
  }
}

/** The caller's sessions, most recently active first. */
export async function listSessions (db: Db, actor: Actor, limit = 1000): Promise<SessionSummary[]> {
  const rows = await db.selectFrom('activity')
    .select(eb => [
      'session_id as id',
      eb.fn.min('at').as('startedAt'),
      eb.fn.max('at').as('lastActivityAt'),
      // Neither socket connects and disconnects nor, with ACTIVITY_LOG_READS, reads and messages.
      eb.fn.countAll<string>().filterWhere(f => f.and([f('type', 'not like', 'ws.%'), f('type', 'not in', ['read', 'ws'])])).as('operations'),
      eb.fn.countAll<string>().filterWhere('status', '>=', 400).as('errors')
    ])
    .where('user_id', '=', actor.userId)
    .groupBy('session_id').orderBy('lastActivityAt', 'desc').limit(limit).execute()
  return rows.map(r => ({ id: r.id, startedAt: r.startedAt, lastActivityAt: r.lastActivityAt, operations: Number(r.operations), errors: Number(r.errors) }))
}

/** A session's entries, oldest first; another user's session is NOT_FOUND. */
export async function listActivity (db: Db, actor: Actor, sessionId: string, limit: number, cursor: string | undefined): Promise<ActivityPage> {
  const after = cursor === undefined ? 0 : Number(cursor)
  if (!Number.isSafeInteger(after) || after < 0) throw errors.validation('cursor is not valid')
  const rows = await db.selectFrom('activity').selectAll()
    .where('session_id', '=', sessionId).where('user_id', '=', actor.userId).where('id', '>', after)
    .orderBy('id').limit(limit + 1).execute()
  if (rows.length === 0 && after === 0) throw errors.notFound(`session ${sessionId} not found`)
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return { items: page.map(toActivityRecord), nextCursor: rows.length > limit && last !== undefined ? String(last.id) : null }
}

/**
 * One Markdown section per entry, in the brief's layout: `## <ISO time> - Backend Activity`, or
 * `## <ISO time> - Backend Error` for a failure (status 400 or more), then a blank line and one
 * `### <Field>: <value>` line per field present: Type, Operation, Path, Duration, for a failure
 * Error (`CODE: message`) and Context (the request), then Details (status, revision, workspace,
 * new path, the details object), and last, for a 5xx in development, `### Stack Trace:` and the
 * stack in a fenced block.
 * Every field is escaped (`markdown.ts`): a path, an op, a message or a detail sent by a client
 * can never end its line, start a heading, or leave its code span or fence, so one entry can
 * never read as another.
 */
export function markdownSection (e: NewActivity | ActivityRecord): string {
  const at = new Date(e.at ?? Date.now()).toISOString()
  const status = Number(e.status)
  const failed = status >= 400
  const lines = [`## ${at} - Backend ${failed ? 'Error' : 'Activity'}`, '', `### Type: ${mdText(e.type)}`]
  if (e.op != null) lines.push(`### Operation: ${mdText(e.op)}`)
  if (e.path != null) lines.push(`### Path: ${mdCode(e.path)}`)
  lines.push(`### Duration: ${Number(e.durationMs)}ms`)
  if (failed) {
    const message = e.message == null || e.message === '' ? '' : `: ${mdText(e.message)}`
    lines.push(`### Error: ${mdText(e.code ?? String(status))}${message}`)
    if (e.context != null) lines.push(`### Context: ${mdText(e.context)}`)
  }
  const details = [`status ${status}`]
  if (e.revision != null) details.push(`revision ${Number(e.revision)}`)
  if (e.workspaceId != null) details.push(`workspace ${mdText(e.workspaceId)}`)
  if (e.newPath != null) details.push(`new path ${mdCode(e.newPath)}`)
  // Keys sorted: jsonb reorders them, and the mirror renders the entry before it went through jsonb.
  if (e.details != null && Object.keys(e.details).length > 0) details.push(mdCode(sortedJson(e.details)))
  lines.push(`### Details: ${details.join(', ')}`)
  if (failed && e.stack != null && e.stack !== '') lines.push('### Stack Trace:', '', mdFence(e.stack))
  return lines.join('\n') + '\n\n'
}

function sortedJson (value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
    : v)
}

export function markdownLog (sessionId: string, entries: ActivityRecord[]): string {
  return `# Session ${sessionId}\n\n` + entries.map(markdownSection).join('')
}

/**
 * Outside development a 500 says in the log only what its answer says (`publicError`: the generic
 * message), and no entry keeps a stack trace; in development a 5xx keeps both. In place.
 */
export function redactFailure (entry: NewActivity, development: boolean): NewActivity {
  if (entry.status < 500 || !development) entry.stack = null
  if (entry.status === 500 && !development && entry.message != null) entry.message = errors.internal().message
  return entry
}

/** Who owns a session id (src/accounts/sessions.ts). */
export interface SessionOwners {
  claim: (userId: string, sessionId: string) => Promise<void>
}

/** Writes entries, and mirrors them to CHAT_LOG_DIR once they are committed. */
export class ActivityRecorder {
  readonly #db: Db
  readonly #mirror: { append: (sessionId: string, text: string) => boolean } | undefined
  readonly #sessions: SessionOwners
  readonly #pending = new Set<Promise<void>>()
  /** each session's latest entry being recorded on its own */
  readonly #last = new Map<string, Promise<void>>()
  /** NODE_ENV=development: a 5xx keeps its stack trace and its own message */
  readonly #development: boolean
  /** ACTIVITY_LOG_READS: the reads' queue (./read-log.ts); undefined when off */
  reads: ReadLog | undefined

  constructor (db: Db, sessions: SessionOwners, mirror?: { append: (sessionId: string, text: string) => boolean }, options: { development?: boolean } = {}) {
    this.#db = db
    this.#sessions = sessions
    this.#mirror = mirror
    this.#development = options.development ?? false
  }

  /** What a failure's entry may say (`redactFailure`), in place: the mirror renders this very object. */
  redact (entry: NewActivity): NewActivity {
    return redactFailure(entry, this.#development)
  }

  /**
   * Before anything is recorded under a session the request names itself (an operation's
   * `sessionId`): it must be the caller's, or be claimed for them now; else 403 FORBIDDEN.
   */
  async claim (userId: string, sessionId: string): Promise<void> {
    await this.#sessions.claim(userId, sessionId)
  }

  /**
   * The rows of entries to insert inside a write transaction, with its last statement (a group
   * commit's, src/files/entries.ts `saveDeferred`) or on their own (`insertActivityRows`); call
   * `committed` for each entry after the commit.
   */
  rows (entries: NewActivity[]): Array<Insertable<ActivityTable>> {
    return entries.map(e => activityRow(this.redact(e)))
  }

  committed (entry: NewActivity): void {
    this.#mirror?.append(entry.sessionId, markdownSection(entry))
  }

  /**
   * On its own (failures after a rollback, logins, sockets); never throws. A session's entries
   * are inserted one after another, so they are listed in the order they were recorded.
   */
  async record (entry: NewActivity, onError: (err: unknown) => void = () => {}): Promise<void> {
    const previous = this.#last.get(entry.sessionId)
    const pending = previous === undefined ? this.#record(entry, onError) : previous.then(async () => { await this.#record(entry, onError) })
    this.#last.set(entry.sessionId, pending)
    this.#pending.add(pending)
    try {
      await pending
    } finally {
      this.#pending.delete(pending)
      if (this.#last.get(entry.sessionId) === pending) this.#last.delete(entry.sessionId)
    }
  }

  async #record (entry: NewActivity, onError: (err: unknown) => void): Promise<void> {
    try {
      await insertActivity(this.#db, this.redact(entry))
      this.committed(entry)
    } catch (err) {
      onError(err)
    }
  }

  /**
   * On shutdown, before the mirror's last flush: waits for the entries still being recorded
   * (callers fire `record` and forget it, so the request may be answered before its entry is in).
   */
  async drain (): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending])
  }
}
