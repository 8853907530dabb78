import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Text, Timestamp, Uuid } from './common.js'

export const Role = Type.Union([Type.Literal('owner'), Type.Literal('editor'), Type.Literal('viewer')])
export type Role = Static<typeof Role>

export const Workspace = Type.Object({
  id: Uuid,
  name: Type.String(),
  ownerId: Uuid,
  role: Role,
  revision: Type.Integer(),
  createdAt: Timestamp,
  forkedFrom: Nullable(Type.Object({
    workspaceId: Uuid,
    revision: Type.Integer()
  }, { description: 'a fork: the workspace and revision it was forked from (the source may since have been deleted); null otherwise' }))
})
export type Workspace = Static<typeof Workspace>

export const WorkspaceList = Type.Object({ items: Type.Array(Workspace) })

export const CreateWorkspaceBody = Type.Object({
  name: Text({ minLength: 1, maxLength: 200 })
}, { additionalProperties: false })

export const Member = Type.Object({ userId: Uuid, email: Type.String(), role: Role })
export type Member = Static<typeof Member>
export const MemberList = Type.Object({ items: Type.Array(Member) })

export const PutMemberBody = Type.Object({
  email: Type.String({ format: 'email', maxLength: 320 }),
  role: Type.Union([Type.Literal('editor'), Type.Literal('viewer')])
}, { additionalProperties: false })

export const MemberParams = Type.Object({ id: Uuid, userId: Uuid })
