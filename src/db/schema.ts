import type { ColumnType, Generated, Kysely, Selectable, Transaction } from 'kysely'
import type { Role } from '../../schemas/workspaces.js'
import type { ChangeOp as ChangeOpName, Kind } from '../../schemas/files.js'

/**
 * The tables as Kysely sees them (sql/ holds the truth). int8 columns are parsed to numbers by
 * the database plugin; revisions stay far below 2^53.
 */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>

export interface UsersTable {
  id: string
  email: string
  password_hash: string | null
  permissions: ColumnType<string[], string[] | undefined, string[]>
  created_at: Timestamp
}

export interface RefreshTokensTable {
  id: string
  user_id: string
  family_id: string
  session_id: string
  token_hash: string
  used_at: Date | null
  revoked_at: Date | null
  expires_at: Timestamp
  created_at: Timestamp
  /** the pair issued for this token, encrypted with a key derived from it (sql/006-session-end.sql) */
  successor: ColumnType<Buffer | null, Buffer | null | undefined, Buffer | null>
}

export interface WorkspacesTable {
  id: string
  name: string
  owner_id: string
  revision: Generated<number>
  pruned_through: Generated<number>
  created_at: Timestamp
  /** where a fork came from (sql/007-snapshots-forks.sql); both null for a workspace made new */
  forked_from_workspace_id: ColumnType<string | null, string | null | undefined, string | null>
  forked_from_revision: ColumnType<number | null, number | null | undefined, number | null>
}

export interface WorkspaceMembersTable {
  workspace_id: string
  user_id: string
  role: Role
  created_at: Timestamp
}

export interface BlobsTable {
  sha256: string
  size: number
  content: Uint8Array
  created_at: Timestamp
  /** the retention pass that found it unreferenced (src/mutations/retention.ts), if any */
  sweep: string | null
}

// The columns' CHECK constraints (sql/) allow exactly the values the API names.
export type EntryKind = Kind

export interface FilesTable {
  workspace_id: string
  path: string
  parent: string
  depth: number
  kind: EntryKind
  blob_sha256: string | null
  size: number | null
  mime_type: string | null
  metadata: ColumnType<Record<string, unknown>, string | undefined, string>
  /** mode 0755 in archives (sql/008-executable.sql); false for directories */
  executable: ColumnType<boolean, boolean | undefined, boolean>
  version: Generated<number>
  etag: number
  created_at: Timestamp
  created_by: string | null
  updated_at: Timestamp
  updated_by: string | null
}
export type FileRow = Selectable<FilesTable>

export type ChangeOp = ChangeOpName

export interface ChangesTable {
  workspace_id: string
  revision: number
  op: ChangeOp
  kind: EntryKind
  path: string
  new_path: string | null
  etag: number | null
  version: number | null
  sha256: string | null
  size: number | null
  user_id: string | null
  session_id: string | null
  op_id: string | null
  at: Timestamp
}
export type ChangeRow = Selectable<ChangesTable>

/** An entry's state as history keeps it (in change_entries.before / .after). */
export interface EntryState {
  kind: EntryKind
  sha256: string | null
  size: number | null
  mimeType: string | null
  metadata: Record<string, unknown>
  /** absent in history recorded before sql/008-executable.sql: false */
  executable?: boolean
  version: number
  etag: number
  createdAt: string
  createdBy: string | null
  updatedAt: string
  updatedBy: string | null
}

export interface ChangeEntriesTable {
  workspace_id: string
  revision: number
  seq: number
  path_before: string | null
  path_after: string | null
  before: ColumnType<EntryState | null, string | null, string | null>
  after: ColumnType<EntryState | null, string | null, string | null>
  sha_before: string | null
  sha_after: string | null
}

/** What a change did to one entry, as history and revert read it back. */
export type StoredEntry = Pick<Selectable<ChangeEntriesTable>, 'revision' | 'seq' | 'path_before' | 'path_after' | 'before' | 'after'>

export interface ActivityTable {
  id: Generated<number>
  session_id: string
  user_id: string
  workspace_id: string | null
  at: Timestamp
  type: string
  op: string | null
  path: string | null
  new_path: string | null
  status: number
  code: string | null
  revision: number | null
  duration_ms: number
  details: ColumnType<Record<string, unknown> | null, string | null, string | null>
  /** the request: `GET /v1/…`, `RPC files.write`, `WS subscribe` (sql/009-activity-context.sql) */
  context: ColumnType<string | null, string | null | undefined, string | null>
  /** a failure's error message */
  message: ColumnType<string | null, string | null | undefined, string | null>
  /** a 5xx's stack trace, in development only */
  stack: ColumnType<string | null, string | null | undefined, string | null>
}
export type ActivityRow = Selectable<ActivityTable>

/** Who owns each session id: the user who first used it (sql/004-sessions.sql). */
export interface SessionsTable {
  id: string
  user_id: string
  created_at: Timestamp
  /** set by logout: the session's access tokens are refused from then on (sql/006-session-end.sql) */
  ended_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

/** A named revision of a workspace, kept from retention (sql/007-snapshots-forks.sql). */
export interface SnapshotsTable {
  workspace_id: string
  name: string
  revision: number
  created_at: Timestamp
  created_by: string | null
}

export interface IdempotencyKeysTable {
  user_id: string
  key: string
  request_hash: string
  status_code: number
  body: ColumnType<unknown, string, string>
  created_at: Timestamp
}

export interface Database {
  change_entries: ChangeEntriesTable
  activity: ActivityTable
  sessions: SessionsTable
  idempotency_keys: IdempotencyKeysTable
  users: UsersTable
  refresh_tokens: RefreshTokensTable
  workspaces: WorkspacesTable
  workspace_members: WorkspaceMembersTable
  blobs: BlobsTable
  files: FilesTable
  changes: ChangesTable
  snapshots: SnapshotsTable
}

export type Db = Kysely<Database>
export type Trx = Transaction<Database>
/** Anything queries can run on: the database or an open transaction. */
export type Executor = Kysely<Database> | Transaction<Database>
