import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { createArchiveService } from '../../src/archive/service.js'
import { MutationType, requestContext, requestMeta } from '../../src/mutations/activity.js'
import type { Actor } from '../../src/accounts/auth.js'
import { ResponseHeaders, responses, SessionHeader, WorkspaceParams } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'
import { BatchResult } from '../../schemas/files.js'
import { ARCHIVE_MEDIA_TYPES, ArchiveBody, ExportQuery, ImportHeaders, ImportQuery } from '../../schemas/archive.js'

/**
 * Archives of a workspace: GET …/archive streams the tree as a tar or zip; POST …/archive applies
 * a tar, tar.gz or zip body as one batch (docs/api.md, "Archives"). Its own plugin: the only body
 * parsers here are the archive media types (raw bytes, up to ARCHIVE_MAX_BYTES), JSON is 415.
 */
const archiveRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { files, config, db } = fastify
  const archives = createArchiveService({ db, config, files })
  const tags = ['files']
  fastify.addHook('onRequest', fastify.authenticate)
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser([...ARCHIVE_MEDIA_TYPES], { parseAs: 'buffer', bodyLimit: config.ARCHIVE_MAX_BYTES }, (_request, body, done) => { done(null, body) })
  // A refusal before the service (content type, body size, query) is in the activity log too.
  fastify.addHook('onError', async function recordRejected (request, reply, error) {
    if (request.method !== 'POST' || (request.actor as Actor | null) === null) return
    const params = request.params as { id?: unknown } | undefined
    const query = request.query as { path?: unknown } | undefined
    files.rejected(request.actor, {
      type: MutationType.import,
      workspaceId: typeof params?.id === 'string' ? params.id : null,
      path: typeof query?.path === 'string' ? query.path : null,
      context: requestContext(request)
    }, error, reply.elapsedTime)
  })

  fastify.get('/:id/archive', {
    schema: {
      tags,
      summary: 'Download the tree (or a subtree) at a revision as a tar or zip archive, streamed',
      params: WorkspaceParams,
      querystring: ExportQuery,
      response: responses({
        200: {
          description: 'The archive, streamed (Content-Disposition: attachment)',
          headers: { ...ResponseHeaders.revision, 'Content-Disposition': Type.String({ description: 'attachment; filename="<name of the base, or workspace>-r<revision>.<tar or zip>"' }) },
          content: {
            'application/x-tar': { schema: Type.String({ format: 'binary' }) },
            'application/zip': { schema: Type.String({ format: 'binary' }) }
          }
        }
      }, ...RouteErrors.archiveExport)
    }
  }, async function exportArchive (request, reply) {
    const { revision, path, format } = request.query
    const archive = await archives.export(request.actor, request.params.id, { format, path, ...(revision === undefined ? {} : { revision }) })
    // A stream bypasses the serializer: the reply is widened from the schema-typed one.
    return await (reply as FastifyReply).headers({
      'content-type': archive.contentType,
      'content-disposition': `attachment; filename="${archive.filename}"`,
      'x-revision': String(archive.revision),
      'cache-control': 'no-store'
    }).send(archive.stream)
  })

  fastify.post('/:id/archive', {
    bodyLimit: config.ARCHIVE_MAX_BYTES,
    config: { activity: MutationType.import },
    schema: {
      tags,
      summary: 'Upload a tar, tar.gz or zip archive: its files and directories below ?path, as one batch (all or none)',
      params: WorkspaceParams,
      querystring: ImportQuery,
      headers: Type.Composite([SessionHeader, ImportHeaders]),
      consumes: [...ARCHIVE_MEDIA_TYPES],
      body: ArchiveBody,
      response: responses({ 200: BatchResult }, ...RouteErrors.archiveImport)
    }
  }, async function importArchive (request, reply) {
    const ifMatch = request.headers['if-match']
    const { statusCode, body } = await archives.import(request.actor, request.params.id, {
      body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
      path: request.query.path,
      ...(ifMatch === undefined ? {} : { ifMatch })
    }, requestMeta(request))
    return await reply.code(statusCode).send(body)
  })
}
export default archiveRoutes
