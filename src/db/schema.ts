import type { ColumnType, Generated, Kysely, Selectable, Transaction } from 'kysely'

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
}

export interface WorkspacesTable {
  id: string
  name: string
  owner_id: string
  revision: Generated<number>
  pruned_through: Generated<number>
  created_at: Timestamp
}

export type Role = 'owner' | 'editor' | 'viewer'

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
}

export type EntryKind = 'file' | 'directory'

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
  version: Generated<number>
  etag: number
  created_at: Timestamp
  created_by: string | null
  updated_at: Timestamp
  updated_by: string | null
}
export type FileRow = Selectable<FilesTable>

export type ChangeOp = 'create' | 'update' | 'delete' | 'move' | 'copy' | 'mkdir'

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

export interface Database {
  users: UsersTable
  refresh_tokens: RefreshTokensTable
  workspaces: WorkspacesTable
  workspace_members: WorkspaceMembersTable
  blobs: BlobsTable
  files: FilesTable
  changes: ChangesTable
}

export type Db = Kysely<Database>
export type Trx = Transaction<Database>
/** Anything queries can run on: the database or an open transaction. */
export type Executor = Kysely<Database> | Transaction<Database>
