import { sql, type Insertable, type KyselyPlugin, type OperationNode, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely'
import type { ActivityTable, Executor, FileRow, Trx } from '../db/schema.js'
import { holdsLock, lockWorkspace, noteLocked, type Head } from '../db/queries.js'
import { compiledPerShape } from '../db/compiled.js'
import { WritesDeferred, type GroupView, type Wanted } from '../mutations/group-commit.js'
import type { Role } from '../../schemas/workspaces.js'
import { ancestorsOf, canonicalPath } from './paths.js'
import { MAX_DEFERRED, saveDeferred, type DeferredWrite, type RecordedChange } from './entries.js'

/**
 * The entries a group commit's transaction has read, kept for its later members (issue 11): each
 * round trip a member makes under the workspace lock is one the whole group waits for. The first
 * member to read an entry reads, in the same query, the entries every member of the group names
 * (the paths of their requests), and the memo keeps what it found — found or not — for the
 * others. It is right because it is read under the workspace row lock, which every write to the
 * workspace's files takes first, and because it forgets what the transaction writes:
 * - it is a Kysely plugin on the group's transaction, so it sees every statement a member sends
 *   before it runs. A write that names the `files` table, and any raw statement (a savepoint's
 *   rollback among them), empties it;
 * - except the one write whose outcome the writer told it first (`expect`): an update's new row,
 *   or a new file's, which the operation computed itself (op-kinds.ts `replaceFile`, `create`);
 *   that row replaces what was known of its path.
 * Outside a group's transaction, or before the lock is held, `findEntry` asks PostgreSQL as always.
 *
 * The statement that takes the workspace's lock for the group (`lockForWrite`) reads, with the
 * head, the entries the members name and the roles of the users they act for: a request alone in
 * its group (a quiet workspace) then makes no query of its own before its change. The entries are
 * read once the lock is granted, by a function whose snapshot is fresh (the statement's own is
 * from before any wait for the lock, and the group it waited for wrote those entries); the roles
 * are read with the statement's snapshot (no earlier than a check before the lock would be).
 *
 * It also holds the group's deferred writes (`GroupView`): a member that only updates or creates
 * a file (one change, one row whose new state it computed) leaves its statement to the group when
 * it runs outside a savepoint (entries.ts `saveChanges` asks `defer`). The memo then knows the new
 * row and the transaction's head moves at once; the group sends every deferred change in one
 * statement (the files' rows, updated or inserted, the changes, their entries and the head; at the
 * group's end, its activity entries too: entries.ts `saveDeferred`), before any other statement of a member (which
 * is stopped, unsent, with `WritesDeferred`) and before the COMMIT. A hot file or workspace
 * written by many requests thus costs one round trip per group, not per request, and a request
 * alone in its group one for its change and its activity entry.
 */
export class EntryMemo implements KyselyPlugin {
  readonly #rows = new Map<string, FileRow | null>()
  readonly #wanted: string[]
  readonly #users: string[]
  /** each wanted user's role in the workspace (null: not a member), once the lock is taken */
  #roles = new Map<string, Role | null>()
  #expected: FileRow | null = null
  /** the changes deferred, in revision order, and the new row of each file they write (inserted: created by one of them) */
  #pending: RecordedChange[] = []
  #pendingEntries = 0
  readonly #pendingRows = new Map<string, { row: FileRow, inserted: boolean }>()
  #deferring = false
  #deferred = false
  #flushing = false

  private constructor (readonly workspaceId: string, wanted: Wanted) {
    this.#users = [...new Set(wanted.users)]
    // (with their directories: a create checks them, `ensureParents`)
    this.#wanted = [...new Set(wanted.paths.flatMap(p => {
      try {
        const path = canonicalPath(p)
        return [...ancestorsOf(path), path]
      } catch {
        return [] // (that request will be refused; nothing to read for it)
      }
    }))]
  }

  /** The group's transaction, remembering for the members of a group in `workspaceId` that name `wanted`. */
  static attach (trx: Trx, workspaceId: string, wanted: Wanted): GroupView {
    const memo = new EntryMemo(workspaceId, wanted)
    const remembering = trx.withPlugin(memo)
    memos.set(remembering, memo)
    return {
      trx: remembering,
      allowDeferring: allowed => {
        memo.#deferring = allowed
        memo.#deferred = false
      },
      deferred: () => memo.#deferred,
      flush: async activity => await memo.#flush(remembering, activity)
    }
  }

  /**
   * Leaves a change that updates or creates one file (to `write.row`) to the group, if the member
   * running may defer; false: it must be sent now.
   */
  defer (change: RecordedChange, write: DeferredWrite): boolean {
    const entries = this.#pendingEntries + change.entries.length
    if (!this.#deferring || change.entries.length === 0 || this.#pending.length >= MAX_DEFERRED || entries > MAX_DEFERRED) return false
    const { row } = write
    this.#pendingEntries = entries
    this.#pending.push(change)
    // (a file created earlier in the group is inserted as its last member left it)
    this.#pendingRows.set(row.path, { row, inserted: write.set === null || this.#pendingRows.get(row.path)?.inserted === true })
    this.#rows.set(row.path, row)
    this.#deferred = true
    return true
  }

  /** Sends the deferred changes, and `activity` with them; false when there were none (nothing sent). */
  async #flush (trx: Trx, activity: Array<Insertable<ActivityTable>> = []): Promise<boolean> {
    if (this.#pending.length === 0) return false
    const changes = this.#pending
    // Each file's last state (a file updated by several members: by the last of them).
    const rows = [...this.#pendingRows.values()]
    const updated = rows.flatMap(r => r.inserted ? [] : [r.row])
    const created = rows.flatMap(r => r.inserted ? [r.row] : [])
    this.#pending = []
    this.#pendingEntries = 0
    this.#pendingRows.clear()
    this.#flushing = true
    try {
      await saveDeferred(trx, this.workspaceId, changes, updated, created, activity)
    } finally {
      this.#flushing = false
    }
    return true
  }

  /** Locks the workspace's row; reads the wanted entries and roles in the same statement. */
  async lock (trx: Executor): Promise<Head | undefined> {
    const paths = this.#wanted.filter(p => !this.#rows.has(p))
    const { rows } = await lockReading(trx, { workspaceId: this.workspaceId, users: this.#users, paths })
    const [first] = rows
    if (first === undefined) return undefined
    const head = { revision: first.head_revision, pruned_through: first.head_pruned_through }
    noteLocked(trx, this.workspaceId, head)
    for (const user of this.#users) this.#roles.set(user, first.roles?.[user] ?? null)
    for (const p of paths) this.#rows.set(p, null)
    for (const row of rows) {
      const file = fileOf(row)
      if (file !== null) this.#rows.set(file.path, file)
    }
    return head
  }

  /** The user's role as the lock's statement read it: null, not a member; undefined, not read. */
  roleOf (userId: string): Role | null | undefined {
    return this.#roles.get(userId)
  }

  /** The entry at `path`: remembered, or read with every wanted path not remembered yet. */
  async find (trx: Executor, path: string): Promise<FileRow | undefined> {
    return (await this.findAll(trx, [path]))[0]
  }

  /** The entries at `paths` that exist, in their order: as `find`. */
  async findAll (trx: Executor, paths: string[]): Promise<FileRow[]> {
    const unknown = paths.filter(p => !this.#rows.has(p))
    if (unknown.length > 0) {
      const read = [...unknown, ...this.#wanted.filter(p => !this.#rows.has(p) && !unknown.includes(p))]
      const rows = await trx.selectFrom('files').selectAll().where('workspace_id', '=', this.workspaceId).where('path', 'in', read).execute()
      for (const p of read) this.#rows.set(p, null)
      for (const row of rows) this.#rows.set(row.path, row)
    }
    return paths.flatMap(p => this.#rows.get(p) ?? [])
  }

  /** The next write to `files` is the update or insert that leaves `row` (and touches no other entry). */
  expect (row: FileRow): void {
    this.#expected = row
  }

  transformQuery (args: PluginTransformQueryArgs): RootOperationNode {
    const { node } = args
    if (this.#flushing) return node
    if (this.#pending.length > 0) throw new WritesDeferred()
    if (node.kind === 'SelectQueryNode' && node.with === undefined) return node
    if (node.kind === 'RawNode' || namesFiles(node)) {
      const expected = node.kind === 'RawNode' ? null : this.#expected
      this.#expected = null
      if (expected === null) {
        this.#rows.clear()
      } else {
        this.#rows.set(expected.path, expected)
      }
    }
    return node
  }

  async transformResult (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
  }
}

const memos = new WeakMap<Executor, EntryMemo>()

/** The memo of this transaction for this workspace, while it holds the workspace's lock. */
export function memoOf (trx: Executor, workspaceId: string): EntryMemo | undefined {
  const memo = memos.get(trx)
  return memo !== undefined && memo.workspaceId === workspaceId && holdsLock(trx, workspaceId) ? memo : undefined
}

/**
 * The workspace's head, its row locked by this transaction: in a group's transaction, with what
 * the members need read in the same statement (`EntryMemo.lock`); else `lockWorkspace`.
 */
export async function lockForWrite (trx: Executor, workspaceId: string): Promise<Head | undefined> {
  const memo = memos.get(trx)
  if (memo === undefined || memo.workspaceId !== workspaceId || holdsLock(trx, workspaceId)) return await lockWorkspace(trx, workspaceId)
  return await memo.lock(trx)
}

interface LockReading { workspaceId: string, users: string[], paths: string[] }

/**
 * The lock's statement (`EntryMemo.lock`): the row locked first (the CTE), then the entries read
 * by a function called for it, after any wait (sql/011-entries-after-lock.sql: fresh, unlike the
 * statement's own reads); null is no user (none is then found).
 */
const lockReading = compiledPerShape((db, { workspaceId, users, paths }: LockReading) => db
  .with(wb => wb('w').materialized(), db => db.selectFrom('workspaces').select(['id', 'revision', 'pruned_through']).where('id', '=', workspaceId).forUpdate())
  .selectFrom('w')
  .leftJoin(sql<FileRow>`entries_after_lock(${sql.ref('w.id')}, ${paths})`.as('f'), join => join.onTrue())
  .select(eb => [
    'w.revision as head_revision',
    'w.pruned_through as head_pruned_through',
    eb.selectFrom('workspace_members').select(sql<Record<string, Role>>`jsonb_object_agg(user_id, role)`.as('roles'))
      .where('workspace_id', '=', workspaceId).where('user_id', 'in', users.length > 0 ? users : [null]).as('roles')
  ])
  .selectAll('f'),
({ users }) => String(users.length),
({ workspaceId, users, paths }) => [workspaceId, workspaceId, ...users.length > 0 ? users : [null], paths])

/** The joined entry of the lock's statement, if one was found (its columns are then all there). */
function fileOf (row: { [K in keyof FileRow]: FileRow[K] | null }): FileRow | null {
  return row.path === null ? null : row as FileRow
}

/** Whether the statement names the `files` table anywhere (its target, a CTE, a subquery). */
function namesFiles (node: OperationNode): boolean {
  const stack: unknown[] = [node]
  while (stack.length > 0) {
    const n = stack.pop()
    if (typeof n !== 'object' || n === null) continue
    if (Array.isArray(n)) {
      stack.push(...n)
      continue
    }
    const o = n as Record<string, unknown>
    if (o.kind === 'IdentifierNode' && o.name === 'files') return true
    for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) stack.push(v)
  }
  return false
}
