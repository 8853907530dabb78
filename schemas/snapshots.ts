import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Text, Timestamp, Uuid } from './common.js'

/** Snapshots (named revisions kept from retention) and forks of a workspace (issue 16). */

/**
 * A snapshot's name: 1–100 characters of ASCII letters, digits, `.`, `_` and `-`, starting with a
 * letter or digit. It is a URL path segment as it is, so nothing in it needs encoding.
 */
export const SNAPSHOT_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'
export const SnapshotName = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: SNAPSHOT_NAME_PATTERN,
  description: '1-100 of A-Z a-z 0-9 . _ -, starting with a letter or digit; unique in its workspace'
})

const Revision = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

export const CreateSnapshotBody = Type.Object({
  name: SnapshotName,
  revision: Type.Optional({ ...Revision, description: 'the revision to name; default: the head' })
}, { additionalProperties: false })
export type CreateSnapshotBody = Static<typeof CreateSnapshotBody>

export const Snapshot = Type.Object({
  name: Type.String(),
  revision: Type.Integer(),
  createdAt: Timestamp,
  createdBy: Nullable(Uuid)
}, { title: 'Snapshot' })
export type Snapshot = Static<typeof Snapshot>

export const SnapshotList = Type.Object({ items: Type.Array(Snapshot) })
export type SnapshotList = Static<typeof SnapshotList>

export const SnapshotParams = Type.Object({ id: Uuid, name: SnapshotName })

export const ForkBody = Type.Object({
  name: Text({ minLength: 1, maxLength: 200, description: 'the new workspace\'s name' }),
  revision: Type.Optional({ ...Revision, description: 'the source revision to fork; default: the head' })
}, { additionalProperties: false })
export type ForkBody = Static<typeof ForkBody>
