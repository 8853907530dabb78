import { randomUUID } from 'node:crypto'
import type { Db, Executor } from '../db/schema.js'
import type { Member, Role, Workspace } from '../../schemas/workspaces.js'
import { errors } from '../core/errors.js'
import { compiledOnce } from '../db/compiled.js'
import { Coalesced } from '../db/coalesce.js'
import { normaliseEmail, requirePermission, type Actor } from './auth.js'

const RANK: Record<Role, number> = { viewer: 1, editor: 2, owner: 3 }

/**
 * The caller's role in a workspace, when it is at least `need`. A workspace the caller is not a
 * member of is WORKSPACE_NOT_FOUND (never 403), so ids of others' workspaces reveal nothing.
 */
export async function requireRole (db: Executor, actor: Actor, workspaceId: string, need: Role, known?: Role | null): Promise<Role> {
  const load = async (): Promise<Role | undefined> => (await selectRole(db, workspaceId, actor.userId))[0]?.role
  // Known already (read with the workspace's lock: files/entry-memo.ts), or asked; from the
  // pool, concurrent checks of one member share a query (src/db/coalesce.ts).
  const role = known !== undefined
    ? known ?? undefined
    : db.isTransaction ? await load() : await coalescedRoles(db).get(`${workspaceId}:${actor.userId}`, load)
  if (role === undefined) throw errors.workspaceNotFound(workspaceId)
  if (RANK[role] < RANK[need]) throw errors.forbidden(`this needs the ${need} role; you are ${role}`)
  return role
}

const selectRole = compiledOnce((db, workspaceId: string, userId: string) => db.selectFrom('workspace_members').select('role')
  .where('workspace_id', '=', workspaceId).where('user_id', '=', userId))

const roles = new WeakMap<Executor, Coalesced<Role | undefined>>()

function coalescedRoles (db: Executor): Coalesced<Role | undefined> {
  let coalesced = roles.get(db)
  if (coalesced === undefined) roles.set(db, coalesced = new Coalesced())
  return coalesced
}

/**
 * Read access: any role and the file.read permission. Membership is checked first: a workspace
 * the caller cannot see is 404 whatever the token, never 403.
 */
export async function requireRead (db: Executor, actor: Actor, workspaceId: string): Promise<void> {
  await requireRole(db, actor, workspaceId, 'viewer')
  requirePermission(actor, 'file.read')
}

export interface WorkspaceHead {
  revision: number
  ownerId: string
  createdAt: Date
}

/** Read access and the workspace's current revision, in one query (the read path's only must-query). */
const selectAccess = compiledOnce((db, workspaceId: string, userId: string) => db.selectFrom('workspace_members')
  .innerJoin('workspaces', 'workspaces.id', 'workspace_members.workspace_id')
  .select(['workspaces.revision', 'workspaces.owner_id as ownerId', 'workspaces.created_at as createdAt'])
  .where('workspace_members.workspace_id', '=', workspaceId).where('workspace_members.user_id', '=', userId))

export async function readAccess (db: Executor, actor: Actor, workspaceId: string): Promise<WorkspaceHead> {
  const [row] = await selectAccess(db, workspaceId, actor.userId)
  if (row === undefined) throw errors.workspaceNotFound(workspaceId)
  requirePermission(actor, 'file.read')
  return row
}

/** Write access: the editor (or owner) role and the file.write permission (membership first, as for reads). */
export async function requireWrite (db: Executor, actor: Actor, workspaceId: string, known?: Role | null): Promise<void> {
  await requireRole(db, actor, workspaceId, 'editor', known)
  requirePermission(actor, 'file.write')
}

export async function createWorkspace (db: Db, actor: Actor, name: string): Promise<Workspace> {
  const id = randomUUID()
  return await db.transaction().execute(async trx => {
    // A valid token whose user is gone (deleted, or minted for an id we never had) owns nothing.
    const user = await trx.selectFrom('users').select('id').where('id', '=', actor.userId).forKeyShare().executeTakeFirst()
    if (user === undefined) throw errors.unauthenticated('the token\'s user does not exist')
    const ws = await trx.insertInto('workspaces').values({ id, name, owner_id: actor.userId })
      .returning(['id', 'name', 'owner_id', 'revision', 'created_at']).executeTakeFirstOrThrow()
    await trx.insertInto('workspace_members').values({ workspace_id: id, user_id: actor.userId, role: 'owner' }).execute()
    return { id: ws.id, name: ws.name, ownerId: ws.owner_id, role: 'owner', revision: ws.revision, createdAt: ws.created_at, forkedFrom: null }
  })
}

function workspaceQuery (db: Executor, userId: string) {
  return db.selectFrom('workspaces')
    .innerJoin('workspace_members', 'workspace_members.workspace_id', 'workspaces.id')
    .select(['workspaces.id', 'workspaces.name', 'workspaces.owner_id as ownerId', 'workspace_members.role',
      'workspaces.revision', 'workspaces.created_at as createdAt',
      'workspaces.forked_from_workspace_id', 'workspaces.forked_from_revision'])
    .where('workspace_members.user_id', '=', userId)
}

/** A workspace as the API shows it: `forkedFrom` from the fork's columns (sql/007-snapshots-forks.sql). */
function toWorkspace (r: Omit<Workspace, 'forkedFrom'> & { forked_from_workspace_id: string | null, forked_from_revision: number | null }): Workspace {
  const { forked_from_workspace_id: from, forked_from_revision: revision, ...ws } = r
  return { ...ws, forkedFrom: from === null || revision === null ? null : { workspaceId: from, revision } }
}

export async function listWorkspaces (db: Db, actor: Actor): Promise<Workspace[]> {
  return (await workspaceQuery(db, actor.userId).orderBy('workspaces.created_at').orderBy('workspaces.id').execute()).map(toWorkspace)
}

export async function getWorkspace (db: Db, actor: Actor, id: string): Promise<Workspace> {
  const ws = await workspaceQuery(db, actor.userId).where('workspaces.id', '=', id).executeTakeFirst()
  if (ws === undefined) throw errors.workspaceNotFound(id)
  return toWorkspace(ws)
}

/** Deletes the workspace and everything in it; returns the ids of those who were members. */
export async function deleteWorkspace (db: Db, actor: Actor, id: string): Promise<string[]> {
  await requireRole(db, actor, id, 'owner')
  return await db.transaction().execute(async trx => {
    const members = await trx.deleteFrom('workspace_members').where('workspace_id', '=', id).returning('user_id').execute()
    await trx.deleteFrom('workspaces').where('id', '=', id).execute()
    return members.map(m => m.user_id)
  })
}

export async function listMembers (db: Db, actor: Actor, id: string): Promise<Member[]> {
  await requireRole(db, actor, id, 'viewer')
  return await db.selectFrom('workspace_members').innerJoin('users', 'users.id', 'workspace_members.user_id')
    .select(['users.id as userId', 'users.email', 'workspace_members.role'])
    .where('workspace_members.workspace_id', '=', id).orderBy('users.email').execute()
}

/** Adds a member or changes a member's role. The owner's own role cannot be changed here. */
export async function putMember (db: Db, actor: Actor, id: string, email: string, role: 'editor' | 'viewer'): Promise<Member> {
  await requireRole(db, actor, id, 'owner')
  const user = await db.selectFrom('users').select(['id', 'email']).where('email', '=', normaliseEmail(email)).executeTakeFirst()
  if (user === undefined) throw errors.notFound(`no user with email ${email}`)
  if (user.id === actor.userId) throw errors.validation('the owner\'s role cannot be changed')
  await db.insertInto('workspace_members').values({ workspace_id: id, user_id: user.id, role })
    .onConflict(oc => oc.columns(['workspace_id', 'user_id']).doUpdateSet({ role }).where('workspace_members.role', '!=', 'owner'))
    .execute()
  return { userId: user.id, email: user.email, role }
}

export async function removeMember (db: Db, actor: Actor, id: string, userId: string): Promise<void> {
  await requireRole(db, actor, id, 'owner')
  if (userId === actor.userId) throw errors.validation('the owner cannot be removed; delete the workspace instead')
  const removed = await db.deleteFrom('workspace_members').where('workspace_id', '=', id).where('user_id', '=', userId).executeTakeFirst()
  if (removed.numDeletedRows === 0n) throw errors.notFound(`user ${userId} is not a member of this workspace`)
}
