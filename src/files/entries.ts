import { sql, type Insertable, type QueryCreator, type Updateable, type UpdateQueryBuilder, type UpdateResult } from 'kysely'
import type { ActivityTable, ChangeEntriesTable, ChangesTable, Database, EntryState, Executor, FileRow, FilesTable, Trx } from '../db/schema.js'
import { rowsJson, compiledPerShape, recordsOf, type ColumnTypes } from '../db/compiled.js'
import { ACTIVITY_COLUMNS } from '../mutations/activity.js'
import type { Actor } from '../accounts/auth.js'
import { errors } from '../core/errors.js'
import { ancestorsOf, depthOf, parentOf } from './paths.js'
import { movedHead } from '../db/queries.js'
import { memoOf } from './entry-memo.js'

/**
 * Entry-level building blocks shared by operations (op-kinds.ts, operations.ts) and revert
 * (revert.ts): the context of one change, entry states as history keeps them, implicit parent
 * directories, and recording a change with every entry it touched.
 */

/** One change being made: it takes `revision` if it changes anything. */
export interface ChangeContext {
  trx: Trx
  workspaceId: string
  actor: Actor
  revision: number
  now: Date
}

/** What one change did to one entry: where it was and how, where it is and how. */
export interface EntryRecord {
  pathBefore: string | null
  pathAfter: string | null
  before: EntryState | null
  after: EntryState | null
}

export type ChangeFields = Pick<ChangesTable, 'op' | 'kind' | 'path'> &
Partial<Pick<ChangesTable, 'new_path' | 'etag' | 'version' | 'sha256' | 'size'>>

export function stateOf (row: FileRow): EntryState {
  return {
    kind: row.kind,
    sha256: row.blob_sha256,
    size: row.size,
    mimeType: row.mime_type,
    metadata: row.metadata,
    executable: row.executable,
    version: row.version,
    etag: row.etag,
    createdAt: new Date(row.created_at).toISOString(),
    createdBy: row.created_by,
    updatedAt: new Date(row.updated_at).toISOString(),
    updatedBy: row.updated_by
  }
}

/** A files row at `path` holding `state`. */
export function rowOf (workspaceId: string, path: string, state: EntryState): Insertable<FilesTable> {
  return {
    workspace_id: workspaceId,
    path,
    parent: parentOf(path),
    depth: depthOf(path),
    kind: state.kind,
    blob_sha256: state.sha256,
    size: state.size,
    mime_type: state.mimeType,
    metadata: JSON.stringify(state.metadata),
    executable: state.executable === true,
    version: state.version,
    etag: state.etag,
    created_at: state.createdAt,
    created_by: state.createdBy,
    updated_at: state.updatedAt,
    updated_by: state.updatedBy
  }
}

export function directoryState (ctx: ChangeContext): EntryState {
  const at = ctx.now.toISOString()
  return {
    kind: 'directory',
    sha256: null,
    size: null,
    mimeType: null,
    metadata: {},
    executable: false,
    version: 1,
    etag: ctx.revision,
    createdAt: at,
    createdBy: ctx.actor.userId,
    updatedAt: at,
    updatedBy: ctx.actor.userId
  }
}

/** Creates the missing ancestors of `path` as directories; a file among them is NOT_A_DIRECTORY. */
export async function ensureParents (ctx: ChangeContext, path: string): Promise<EntryRecord[]> {
  const ancestors = ancestorsOf(path)
  if (ancestors.length === 0) return []
  // (in a group commit's transaction, as the group's lock read them: ./entry-memo.ts)
  const found = await memoOf(ctx.trx, ctx.workspaceId)?.findAll(ctx.trx, ancestors) ?? await ctx.trx.selectFrom('files').select(['path', 'kind'])
    .where('workspace_id', '=', ctx.workspaceId).where('path', 'in', ancestors).execute()
  const file = found.find(r => r.kind === 'file')
  if (file !== undefined) throw errors.notADirectory(file.path)
  const have = new Set(found.map(r => r.path))
  const missing = ancestors.filter(a => !have.has(a))
  if (missing.length === 0) return []
  const state = directoryState(ctx)
  await ctx.trx.insertInto('files').values(missing.map(p => rowOf(ctx.workspaceId, p, state))).execute()
  return missing.map(p => ({ pathBefore: null, pathAfter: p, before: null, after: state }))
}

/** config.MAX_ENTRIES_PER_REQUEST's default, for callers that do not pass the setting (tests). */
export const DEFAULT_MAX_ENTRIES = 10_000

/**
 * The entries one request may touch (MAX_ENTRIES_PER_REQUEST): every entry its changes record in
 * history, implicit parents included, summed over all its operations. Without it one request
 * could copy a subtree onto itself over and over and write entries exponentially, holding the
 * workspace lock and a connection throughout.
 */
export class EntryBudget {
  #used = 0
  constructor (readonly max: number) {}

  /** How many more entries fit. */
  get left (): number {
    return this.max - this.#used
  }

  /** Counts `n` entries; 413 TOO_MANY_ENTRIES once past the bound. */
  take (n: number): void {
    this.#used += n
    if (this.#used > this.max) throw errors.tooManyEntries(this.max)
  }

  /** Refuses `n` more entries before any of them is written (n may be a capped count: left + 1). */
  check (n: number): void {
    if (n > this.left) throw errors.tooManyEntries(this.max)
  }
}

export interface RecordedChange {
  revision: number
  fields: ChangeFields & { session_id: string, user_id: string, op_id: string | null, at: Date }
  entries: EntryRecord[]
}

const CHUNK = 500

/**
 * A write of `files` whose outcome, `row`, the operation already knows (op-kinds.ts
 * `OpContext.writes`): the UPDATE of its row at `row.path` to the values `set`, or, with `set`
 * null, the INSERT of `row`, a new file's.
 */
export interface DeferredWrite {
  set: FileSet | null
  row: FileRow
}
type FileSet = Omit<Updateable<FilesTable>, 'metadata'>
interface FileUpdate { set: FileSet, row: FileRow }

/** A files row as inserted (the stored form of what `row` holds). */
const insertable = (row: FileRow): Insertable<FilesTable> => rowOf(row.workspace_id, row.path, stateOf(row))

function updateOf (db: Executor, w: FileUpdate): UpdateQueryBuilder<Database, 'files', 'files', UpdateResult> {
  return db.updateTable('files').set(w.set).where('workspace_id', '=', w.row.workspace_id).where('path', '=', w.row.path)
}

/**
 * Runs the deferred writes, in order (before anything reads what they change); tells the
 * group's entry memo (./entry-memo.ts) what each leaves: its `row`.
 */
export async function runWrites (trx: Trx, writes: DeferredWrite[]): Promise<void> {
  for (const { set, row } of writes.splice(0)) {
    memoOf(trx, row.workspace_id)?.expect(row)
    if (set === null) await trx.insertInto('files').values(insertable(row)).execute()
    else await updateOf(trx, { set, row }).execute()
  }
}

interface Recording {
  workspaceId: string
  head: number
  /** each `*_COLUMNS`' rows as `rowsJson` */
  changes: string
  entries: string
  /** one file's update (a request's own) */
  write: FileUpdate | undefined
  /** the new rows of the files a group's deferred changes update (FILE_UPDATE_COLUMNS) */
  rows: string | undefined
  /** new files' rows: a request's own create, or those of a group's deferred changes */
  inserts: string | undefined
  /** activity entries inserted with them (a group's, at its end) */
  activity: string | undefined
}

const CHANGE_COLUMNS: ColumnTypes<Insertable<ChangesTable>> = [['workspace_id', 'uuid'], ['revision', 'bigint'], ['op', 'text'], ['kind', 'text'],
  ['path', 'text'], ['new_path', 'text'], ['etag', 'bigint'], ['version', 'integer'], ['sha256', 'text'], ['size', 'bigint'],
  ['user_id', 'uuid'], ['session_id', 'uuid'], ['op_id', 'text'], ['at', 'timestamptz']]
const ENTRY_COLUMNS: ColumnTypes<Insertable<ChangeEntriesTable>> = [['workspace_id', 'uuid'], ['revision', 'bigint'], ['seq', 'integer'],
  ['path_before', 'text'], ['path_after', 'text'], ['before', 'jsonb'], ['after', 'jsonb'], ['sha_before', 'text'], ['sha_after', 'text']]
const FILE_COLUMNS: ColumnTypes<Insertable<FilesTable>> = [['workspace_id', 'uuid'], ['path', 'text'], ['parent', 'text'], ['depth', 'integer'],
  ['kind', 'text'], ['blob_sha256', 'text'], ['size', 'bigint'], ['mime_type', 'text'], ['metadata', 'jsonb'], ['version', 'integer'],
  ['etag', 'bigint'], ['created_at', 'timestamptz'], ['created_by', 'uuid'], ['updated_at', 'timestamptz'], ['updated_by', 'uuid'],
  ['executable', 'boolean']]
/** What a deferred update sets (and `path`, which row): every column an update of content may change. */
const FILE_UPDATE_COLUMNS: ColumnTypes<FileRow> = [['path', 'text'], ['blob_sha256', 'text'], ['size', 'bigint'], ['mime_type', 'text'],
  ['executable', 'boolean'], ['version', 'integer'], ['etag', 'bigint'], ['updated_at', 'timestamptz'], ['updated_by', 'uuid']]

const names = <T>(columns: ColumnTypes<T>): Array<keyof T & string> => columns.map(([column]) => column)

/** A request's own deferred write, as `recordChanges` sends it. */
function ownWrite (w: DeferredWrite | undefined): Pick<Recording, 'write' | 'inserts'> {
  if (w === undefined) return { write: undefined, inserts: undefined }
  return w.set === null ? { write: undefined, inserts: rowsJson(FILE_COLUMNS, [insertable(w.row)]) } : { write: { set: w.set, row: w.row }, inserts: undefined }
}

/** Adds a data-modifying CTE whose rows nothing reads (so the statement's tables need not name it). */
function also (q: QueryCreator<Database>, name: string, cte: Parameters<QueryCreator<Database>['with']>[1]): QueryCreator<Database> {
  return q.with(name, cte) as unknown as QueryCreator<Database>
}

/**
 * The one statement of a write's changes (`saveChanges`, `saveDeferred`). Each table's rows go as
 * one JSON parameter (`recordsOf`), so its text depends only on which parts it has, not on how many
 * rows each holds: compiled, and prepared on each connection, once per kind.
 */
const recordChanges = compiledPerShape((db, r: Recording) => {
  const { write, rows, inserts, activity } = r
  let q: QueryCreator<Database> = db
  if (write !== undefined) q = also(q, 'w', () => updateOf(db, write))
  if (rows !== undefined) {
    // (parenthesised: Kysely writes a raw CTE as it is.) Each row is found by one probe of the
    // primary key (a LATERAL with a LIMIT is not flattened into a join) and updated by its ctid:
    // joined to the files instead, the plan kept for this statement, made for the average
    // workspace (in a database of small ones, a few files), read all of a big workspace's files
    // on every group (sql/015-probes-per-path.sql). The workspace's lock keeps each ctid as read.
    q = also(q, 'f', () => sql`(update files as f set blob_sha256 = v.blob_sha256, size = v.size, mime_type = v.mime_type, executable = v.executable,
      version = v.version, etag = v.etag, updated_at = v.updated_at, updated_by = v.updated_by
      from (select v.*, t.ctid as tid from (${recordsOf(FILE_UPDATE_COLUMNS, rows)}) as v (${sql.raw(names(FILE_UPDATE_COLUMNS).join(', '))})
        cross join lateral (select ctid from files where workspace_id = ${r.workspaceId} and path = v.path collate "C" limit 1) as t) as v
      where f.ctid = v.tid)`)
  }
  if (inserts !== undefined) q = also(q, 'n', () => db.insertInto('files').columns(names(FILE_COLUMNS)).expression(recordsOf(FILE_COLUMNS, inserts)))
  q = also(also(q, 'c', () => db.insertInto('changes').columns(names(CHANGE_COLUMNS)).expression(recordsOf(CHANGE_COLUMNS, r.changes))),
    'e', () => db.insertInto('change_entries').columns(names(ENTRY_COLUMNS)).expression(recordsOf(ENTRY_COLUMNS, r.entries)))
  if (activity !== undefined) q = also(q, 'a', () => db.insertInto('activity').columns(names(ACTIVITY_COLUMNS)).expression(recordsOf(ACTIVITY_COLUMNS, activity)))
  return q.updateTable('workspaces').set({ revision: r.head }).where('id', '=', r.workspaceId)
},
r => `${r.write === undefined ? '-' : Object.keys(r.write.set).join(',')}/${r.rows === undefined ? '-' : 'f'}/${r.inserts === undefined ? '-' : 'n'}/${r.activity === undefined ? '-' : 'a'}`,
r => [
  ...r.write === undefined ? [] : [...Object.values(r.write.set).filter(v => v !== undefined), r.write.row.workspace_id, r.write.row.path],
  ...r.rows === undefined ? [] : [r.rows, r.workspaceId],
  ...r.inserts === undefined ? [] : [r.inserts],
  r.changes, r.entries,
  ...r.activity === undefined ? [] : [r.activity],
  r.head, r.workspaceId
])

/**
 * Records changes and their entries (in revision order) inside the change's transaction, with
 * the deferred writes they come from, and moves the workspace's head to the last of them. A
 * write of up to CHUNK changes and entries (and one deferred write) is one statement (the rest as
 * CTEs of the head's UPDATE): every round trip under the workspace lock is one that every other
 * writer of the workspace waits for.
 */
export async function saveChanges (trx: Trx, workspaceId: string, changes: RecordedChange[], writes: DeferredWrite[] = []): Promise<void> {
  const head = changes.at(-1)?.revision
  if (head === undefined) {
    await runWrites(trx, writes)
    return
  }
  const [only] = changes
  const [write] = writes
  // A file's update or creation alone, in a group commit: left to the group (./entry-memo.ts).
  if (changes.length === 1 && writes.length === 1 && only !== undefined && write !== undefined && memoOf(trx, workspaceId)?.defer(only, write) === true) {
    writes.pop()
    movedHead(trx, workspaceId, head)
    return
  }
  const { changeRows, entryRows } = rowsOf(workspaceId, changes)
  if (changeRows.length <= CHUNK && entryRows.length > 0 && entryRows.length <= CHUNK && writes.length <= 1) {
    const write = writes.pop()
    if (write !== undefined) memoOf(trx, workspaceId)?.expect(write.row)
    await recordChanges(trx, { workspaceId, head, changes: rowsJson(CHANGE_COLUMNS, changeRows), entries: rowsJson(ENTRY_COLUMNS, entryRows), ...ownWrite(write), rows: undefined, activity: undefined })
    movedHead(trx, workspaceId, head)
    return
  }
  await runWrites(trx, writes)
  for (let i = 0; i < changeRows.length; i += CHUNK) await trx.insertInto('changes').values(changeRows.slice(i, i + CHUNK)).execute()
  for (let i = 0; i < entryRows.length; i += CHUNK) await trx.insertInto('change_entries').values(entryRows.slice(i, i + CHUNK)).execute()
  await trx.updateTable('workspaces').set({ revision: head }).where('id', '=', workspaceId).execute()
  movedHead(trx, workspaceId, head)
}

/** The most changes (and entries) a group defers: what one statement records (`saveDeferred`). */
export const MAX_DEFERRED = CHUNK

/**
 * A group's deferred changes (./entry-memo.ts: each updates one file, to its new row in `rows`,
 * or creates one, whose row is in `created`; at most MAX_DEFERRED changes and entries), with
 * `activity` rows when there are any: one statement.
 */
export async function saveDeferred (trx: Executor, workspaceId: string, changes: RecordedChange[], rows: FileRow[], created: FileRow[], activity: Array<Insertable<ActivityTable>>): Promise<void> {
  const head = changes.at(-1)?.revision
  if (head === undefined) return
  const { changeRows, entryRows } = rowsOf(workspaceId, changes)
  await recordChanges(trx, {
    workspaceId,
    head,
    changes: rowsJson(CHANGE_COLUMNS, changeRows),
    entries: rowsJson(ENTRY_COLUMNS, entryRows),
    write: undefined,
    rows: rows.length === 0 ? undefined : rowsJson(FILE_UPDATE_COLUMNS, rows),
    inserts: created.length === 0 ? undefined : rowsJson(FILE_COLUMNS, created.map(insertable)),
    activity: activity.length === 0 ? undefined : rowsJson(ACTIVITY_COLUMNS, activity)
  })
}

function rowsOf (workspaceId: string, changes: RecordedChange[]): { changeRows: Array<Insertable<ChangesTable>>, entryRows: Array<Insertable<ChangeEntriesTable>> } {
  const changeRows = changes.map(c => ({
    workspace_id: workspaceId,
    revision: c.revision,
    new_path: null,
    etag: c.revision,
    version: null,
    sha256: null,
    size: null,
    ...c.fields
  }))
  const entryRows = changes.flatMap(c => c.entries.map((e, seq) => ({
    workspace_id: workspaceId,
    revision: c.revision,
    seq,
    path_before: e.pathBefore,
    path_after: e.pathAfter,
    before: e.before === null ? null : JSON.stringify(e.before),
    after: e.after === null ? null : JSON.stringify(e.after),
    sha_before: e.before?.sha256 ?? null,
    sha_after: e.after?.sha256 ?? null
  })))
  return { changeRows, entryRows }
}
