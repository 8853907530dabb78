import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Actor } from '../../src/accounts/auth.js'
import { ActivityType } from '../../src/snapshots/service.js'
import { requestContext, requestMeta } from '../../src/mutations/activity.js'
import { noContent, responses, SessionHeader, WorkspaceParams } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'
import { CreateSnapshotBody, ForkBody, Snapshot, SnapshotList, SnapshotParams } from '../../schemas/snapshots.js'
import { Workspace } from '../../schemas/workspaces.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** a snapshot or fork route's activity type: its requests refused before the service are logged too */
    snapshotActivity?: string
  }
}

/** Snapshots (named revisions) and forks of a workspace: /v1/workspaces/{id}/snapshots and /fork. */
const snapshotRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { snapshots, files } = fastify
  const tags = ['snapshots']
  const meta = requestMeta
  fastify.addHook('onRequest', fastify.authenticate)
  // Refused by its schema before the service: logged as the service logs every other failure.
  fastify.addHook('onError', async function recordRejected (request, reply, error) {
    const type = request.routeOptions.config.snapshotActivity
    if (type === undefined || (request.actor as Actor | null) === null) return
    const params = request.params as { id?: unknown } | undefined
    files.rejected(request.actor, { type, workspaceId: typeof params?.id === 'string' ? params.id : null, context: requestContext(request) }, error, reply.elapsedTime)
  })

  fastify.get('/:id/snapshots', {
    schema: { tags, summary: 'The workspace\'s snapshots, by name (any member)', params: WorkspaceParams, response: responses({ 200: SnapshotList }, ...RouteErrors.workspaceRead) }
  }, async function listSnapshots (request) {
    return { items: await snapshots.list(request.actor, request.params.id) }
  })

  fastify.post('/:id/snapshots', {
    config: { snapshotActivity: ActivityType.snapshotCreate },
    schema: {
      tags,
      summary: 'Name a revision (default: the head); retention keeps it readable (editor or owner)',
      params: WorkspaceParams,
      headers: SessionHeader,
      body: CreateSnapshotBody,
      response: responses({ 201: Snapshot }, ...RouteErrors.snapshotCreate)
    }
  }, async function createSnapshot (request, reply) {
    const result = await snapshots.create(request.actor, request.params.id, request.body, meta(request))
    return await reply.code(result.statusCode).send(result.body)
  })

  fastify.get('/:id/snapshots/:name', {
    schema: { tags, summary: 'A snapshot: its name and revision (any member)', params: SnapshotParams, response: responses({ 200: Snapshot }, ...RouteErrors.snapshotRead) }
  }, async function getSnapshot (request) {
    return await snapshots.get(request.actor, request.params.id, request.params.name)
  })

  fastify.delete('/:id/snapshots/:name', {
    config: { snapshotActivity: ActivityType.snapshotDelete },
    schema: {
      tags,
      summary: 'Delete a snapshot; its revision may then be pruned (editor or owner)',
      params: SnapshotParams,
      headers: SessionHeader,
      response: responses({ 204: noContent('Deleted') }, ...RouteErrors.snapshotDelete)
    }
  }, async function deleteSnapshot (request, reply) {
    await snapshots.remove(request.actor, request.params.id, request.params.name, meta(request))
    return await reply.code(204).send(null)
  })

  fastify.post('/:id/fork', {
    config: { snapshotActivity: ActivityType.fork },
    schema: {
      tags,
      summary: 'Fork: a new workspace, owned by the caller, holding this one\'s tree at a revision (default: the head) as its revision 1 (any member)',
      params: WorkspaceParams,
      headers: SessionHeader,
      body: ForkBody,
      response: responses({ 201: Workspace }, ...RouteErrors.fork)
    }
  }, async function fork (request, reply) {
    const result = await snapshots.fork(request.actor, request.params.id, request.body, meta(request))
    return await reply.code(result.statusCode).send(result.body)
  })
}
export default snapshotRoutes
