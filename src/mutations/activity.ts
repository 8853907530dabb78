import type { ActivityRow, Db, Executor } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { errors } from '../core/errors.js'
import { mdCode, mdText } from './markdown.js'
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
  revert: 'revert'
} as const
export type MutationType = typeof MutationType[keyof typeof MutationType]

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
  return e
}

const storable = (s: string): string => s.replaceAll('\u0000', '\ufffd').toWellFormed()

export async function insertActivity (db: Executor, entry: NewActivity): Promise<void> {
  const e = settle(entry)
  await db.insertInto('activity').values({
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
    details: e.details == null ? null : JSON.stringify(e.details)
  }).execute()
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
    details: r.details
  }
}

/** The caller's sessions, most recently active first. */
export async function listSessions (db: Db, actor: Actor, limit = 1000): Promise<SessionSummary[]> {
  const rows = await db.selectFrom('activity')
    .select(eb => [
      'session_id as id',
      eb.fn.min('at').as('startedAt'),
      eb.fn.max('at').as('lastActivityAt'),
      eb.fn.countAll<string>().filterWhere('type', 'not like', 'ws.%').as('operations'),
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
 * One Markdown section per entry: `## <ISO time> - <type>` with its operation, path, outcome.
 * Every field is rendered on its own line and escaped (`markdown.ts`): a path, an op or a detail
 * sent by a client can never end its line, start a heading, or leave its code span, so one entry
 * can never read as another.
 */
export function markdownSection (e: NewActivity | ActivityRecord): string {
  const at = new Date(e.at ?? Date.now()).toISOString()
  const lines = [`## ${at} - ${mdText(e.type)}`, '']
  if (e.op != null) lines.push(`- operation: ${mdText(e.op)}`)
  if (e.workspaceId != null) lines.push(`- workspace: ${mdText(e.workspaceId)}`)
  if (e.path != null) lines.push(`- path: ${mdCode(e.path)}`)
  if (e.newPath != null) lines.push(`- new path: ${mdCode(e.newPath)}`)
  lines.push(`- status: ${Number(e.status)}${e.code == null ? '' : ` ${mdText(e.code)}`}`)
  if (e.revision != null) lines.push(`- revision: ${Number(e.revision)}`)
  lines.push(`- duration: ${Number(e.durationMs)} ms`)
  // Keys sorted: jsonb reorders them, and the mirror renders the entry before it went through jsonb.
  if (e.details != null && Object.keys(e.details).length > 0) lines.push(`- details: ${mdCode(sortedJson(e.details))}`)
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

  constructor (db: Db, sessions: SessionOwners, mirror?: { append: (sessionId: string, text: string) => boolean }) {
    this.#db = db
    this.#sessions = sessions
    this.#mirror = mirror
  }

  /**
   * Before anything is recorded under a session the request names itself (an operation's
   * `sessionId`): it must be the caller's, or be claimed for them now; else 403 FORBIDDEN.
   */
  async claim (userId: string, sessionId: string): Promise<void> {
    await this.#sessions.claim(userId, sessionId)
  }

  /** Inside a write transaction; call `committed` after the commit. */
  async write (executor: Executor, entry: NewActivity): Promise<void> {
    await insertActivity(executor, entry)
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
      await insertActivity(this.#db, entry)
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
