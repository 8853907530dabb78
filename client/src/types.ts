import type { Static, TSchema } from '@sinclair/typebox'
import type * as auth from '../../schemas/auth.js'
import type * as common from '../../schemas/common.js'
import type * as files from '../../schemas/files.js'
import type * as search from '../../schemas/search.js'
import type * as sessions from '../../schemas/sessions.js'
import type * as snapshots from '../../schemas/snapshots.js'
import type * as stats from '../../schemas/stats.js'
import type * as workspaces from '../../schemas/workspaces.js'
import type * as ws from '../../schemas/ws.js'

/**
 * Every shape the SDK sends or receives, derived from the server's own TypeBox schemas
 * (schemas/), so the SDK cannot drift from the contract: a schema change changes these types and
 * `npm run typecheck` fails wherever the SDK disagrees. Type-only imports: nothing of schemas/
 * (or TypeBox) is loaded at run time.
 */

/**
 * A schema's static type as it travels in JSON: strings where the server's services hold Dates,
 * and an open object (metadata, error details) as any JSON object rather than TypeBox's `{}`.
 */
export type Wire<T> = T extends Date
  ? string
  : T extends Array<infer U>
    ? Array<Wire<U>>
    : T extends object
      ? [keyof T] extends [never] ? Record<string, unknown> : { [K in keyof T]: Wire<T[K]> }
      : T

/** The wire type of a schema. */
export type Of<S extends TSchema> = Wire<Static<S>>

// Answers
export type ErrorBody = Of<typeof common.ErrorSchema>
export type User = Of<typeof auth.User>
export type AuthResult = Of<typeof auth.AuthResult>
export type Workspace = Of<typeof workspaces.Workspace>
export type WorkspaceList = Of<typeof workspaces.WorkspaceList>
export type Role = Of<typeof workspaces.Role>
export type Member = Of<typeof workspaces.Member>
export type MemberList = Of<typeof workspaces.MemberList>
export type FileMeta = Of<typeof files.FileMeta>
export type Entry = Of<typeof files.Entry>
export type WriteResult = Of<typeof files.WriteResult>
export type DeleteResult = Of<typeof files.DeleteResult>
export type OperationResult = Of<typeof files.OperationResult>
export type OpData = Of<typeof files.OpData>
export type BatchResult = Of<typeof files.BatchResult>
export type TreeResult = Of<typeof files.TreeResult>
/** What a search sends: the query, and any option (each has a default on the server). */
export type SearchBody = Pick<Of<typeof search.SearchBody>, 'query'> & Partial<Omit<Of<typeof search.SearchBody>, 'query'>>
export type SearchResult = Of<typeof search.SearchResult>
export type FindQuery = Pick<Of<typeof search.FindQuery>, 'q'> & Partial<Omit<Of<typeof search.FindQuery>, 'q'>>
export type FindResult = Of<typeof search.FindResult>
export type Change = Of<typeof files.Change>
export type ChangeOp = Of<typeof files.ChangeOp>
export type ChangesResult = Of<typeof files.ChangesResult>
export type HistoryResult = Of<typeof files.HistoryResult>
export type RevertResult = Of<typeof files.RevertResult>
export type SessionSummary = Of<typeof sessions.SessionSummary>
export type SessionList = Of<typeof sessions.SessionList>
export type ActivityRecord = Of<typeof sessions.ActivityRecord>
export type ActivityPage = Of<typeof sessions.ActivityPage>
export type Stats = Of<typeof stats.Stats>
export type Snapshot = Of<typeof snapshots.Snapshot>
export type SnapshotList = Of<typeof snapshots.SnapshotList>

// Requests
export type Credentials = Of<typeof auth.Credentials>
export type CreateWorkspaceBody = Of<typeof workspaces.CreateWorkspaceBody>
export type PutMemberBody = Of<typeof workspaces.PutMemberBody>
export type CreateSnapshotBody = Of<typeof snapshots.CreateSnapshotBody>
export type ForkBody = Of<typeof snapshots.ForkBody>
export type WriteBody = Of<typeof files.WriteBody>
export type Operation = Of<typeof files.Operation>
export type OpType = Of<typeof files.OpType>
export type TextEdit = Of<typeof files.TextEdit>
export type BatchBody = Of<typeof files.BatchBody>
export type RevertBody = Of<typeof files.RevertBody>
export type ReadQuery = Of<typeof files.ReadQuery>
/** Query parameters with a default are optional to send. */
export type TreeQuery = Partial<Of<typeof files.TreeQuery>>
export type ChangesQuery = Partial<Of<typeof files.ChangesQuery>>
export type HistoryQuery = Partial<Of<typeof files.HistoryQuery>>
export type ActivityQuery = Partial<Of<typeof sessions.ActivityQuery>>

// WebSocket
export type ClientMessage = Of<typeof ws.ClientMessage>
export type RpcMethod = ws.RpcMethod
export type RpcParams<M extends RpcMethod> = Of<(typeof ws.RpcParams)[M]>
/** What each RPC method answers: the REST route's body. */
export interface RpcResults {
  'files.read': Entry
  'files.write': WriteResult
  'files.delete': DeleteResult
  'operations.apply': OperationResult
  'operations.batch': BatchResult
  'tree.list': TreeResult
  'changes.list': ChangesResult
  search: SearchResult
  find: FindResult
  'workspaces.fork': Workspace
}

/** A file's meta (not a delete's count) in an operation's `data`. */
export const isMeta = (data: OpData): data is FileMeta => 'path' in data
