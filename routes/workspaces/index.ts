import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import * as workspaces from '../../src/accounts/workspaces.js'
import { described, noContent, responses, WorkspaceParams } from '../../schemas/common.js'
import { Examples, RouteErrors } from '../../schemas/responses.js'
import { CreateWorkspaceBody, Member, MemberList, MemberParams, PutMemberBody, Workspace, WorkspaceList } from '../../schemas/workspaces.js'

/** Workspaces and their members: /v1/workspaces. */
const workspaceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify
  const tags = ['workspaces']
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.post('/workspaces', {
    schema: {
      tags,
      summary: 'Create a workspace (the caller becomes its owner)',
      body: described(CreateWorkspaceBody, { example: Examples.createWorkspace }),
      response: responses({ 201: described(Workspace, { description: 'Created', example: Examples.workspace }) }, ...RouteErrors.createWorkspace)
    }
  }, async function createWorkspace (request, reply) {
    return await reply.code(201).send(await workspaces.createWorkspace(db, request.actor, request.body.name))
  })

  fastify.get('/workspaces', {
    schema: { tags, summary: 'The workspaces the caller is a member of', response: responses({ 200: described(WorkspaceList, { description: 'The caller\'s workspaces' }) }, ...RouteErrors.authenticated) }
  }, async function listWorkspaces (request) {
    return { items: await workspaces.listWorkspaces(db, request.actor) }
  })

  fastify.get('/workspaces/:id', {
    schema: { tags, summary: 'A workspace, with the caller\'s role and its current revision', params: WorkspaceParams, response: responses({ 200: described(Workspace, { description: 'The workspace' }) }, ...RouteErrors.workspaceRead) }
  }, async function getWorkspace (request) {
    return await workspaces.getWorkspace(db, request.actor, request.params.id)
  })

  fastify.delete('/workspaces/:id', {
    schema: { tags, summary: 'Delete a workspace and everything in it (owner only)', params: WorkspaceParams, response: responses({ 204: noContent('Deleted') }, ...RouteErrors.workspaceDelete) }
  }, async function deleteWorkspace (request, reply) {
    const members = await workspaces.deleteWorkspace(db, request.actor, request.params.id)
    // Here at once, elsewhere through the access event: cached access is dropped and live
    // subscriptions end (close 4403).
    fastify.cache.forget(request.params.id, members)
    void fastify.fanout.publishAccessChange(request.params.id, members)
    return await reply.code(204).send(null)
  })

  fastify.get('/workspaces/:id/members', {
    schema: { tags, summary: 'The members and their roles (any member)', params: WorkspaceParams, response: responses({ 200: described(MemberList, { description: 'The members' }) }, ...RouteErrors.workspaceRead) }
  }, async function listMembers (request) {
    return { items: await workspaces.listMembers(db, request.actor, request.params.id) }
  })

  fastify.put('/workspaces/:id/members', {
    schema: { tags, summary: 'Add a member or change a role (owner only)', params: WorkspaceParams, body: PutMemberBody, response: responses({ 200: described(Member, { description: 'The member, with their role' }) }, ...RouteErrors.member) }
  }, async function putMember (request) {
    return await workspaces.putMember(db, request.actor, request.params.id, request.body.email, request.body.role)
  })

  fastify.delete('/workspaces/:id/members/:userId', {
    schema: { tags, summary: 'Remove a member (owner only)', params: MemberParams, response: responses({ 204: noContent('Removed') }, ...RouteErrors.member) }
  }, async function removeMember (request, reply) {
    await workspaces.removeMember(db, request.actor, request.params.id, request.params.userId)
    fastify.cache.forget(request.params.id, [request.params.userId])
    void fastify.fanout.publishAccessChange(request.params.id, [request.params.userId])
    return await reply.code(204).send(null)
  })
}
export default workspaceRoutes
