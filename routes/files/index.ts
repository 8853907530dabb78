import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { pathFromUrl } from '../../src/files/paths.js'
import { rawReadHeaders } from '../../src/files/content.js'
import { errors } from '../../src/core/errors.js'
import { noneMatch } from '../../src/core/http.js'
import { MutationType } from '../../src/mutations/activity.js'
import type { Actor } from '../../src/accounts/auth.js'
import { responses, SessionHeader, Uuid, WorkspaceParams } from '../../schemas/common.js'
import {
  BatchBody, BatchResult, ChangesQuery, ChangesResult, DeleteResult, Entry, HistoryQuery, HistoryResult, Operation, OperationResult,
  ReadQuery, RevertBody, RevertResult, TreeQuery, TreeResult, WriteBody, WriteResult
} from '../../schemas/files.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** a mutating route's activity type: its requests refused before the service are logged too */
    activity?: MutationType
  }
}

const FileParams = Type.Object({ id: Uuid, '*': Type.Optional(Type.String()) })
const ReadHeaders = Type.Object({ 'if-none-match': Type.Optional(Type.String()) })
const WriteHeaders = Type.Composite([SessionHeader, Type.Object({
  'if-match': Type.Optional(Type.String({ maxLength: 100 })),
  'if-none-match': Type.Optional(Type.String({ maxLength: 100 }))
})])

const RESOURCE_PATH = {
  files: /\/workspaces\/[^/]+\/files(\/[^?]*)?(?:\?|$)/,
  history: /\/workspaces\/[^/]+\/history(\/[^?]*)?(?:\?|$)/
}

/** The path a `/files/{path}` (or `/history/{path}`) URL names, from the raw URL so that `%2F` stays visible. */
function filePath (request: FastifyRequest, resource: keyof typeof RESOURCE_PATH): string {
  const match = RESOURCE_PATH[resource].exec(request.raw.url ?? '')
  return pathFromUrl(match?.[1] ?? '')
}

const quoted = (etag: string): string => `"${etag}"`

/**
 * Files, operations, the tree and the change feed of a workspace: /v1/workspaces/{id}/…
 * One long plugin on purpose: it is the list of these routes, each a schema and a short handler
 * calling the file service, sharing the hooks registered at the top.
 */
const fileRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { files, config } = fastify
  const tags = ['files']
  // Bodies carry file content: room for base64 (4/3) and JSON escaping, over the file limit.
  const bodyLimit = 2 * config.MAX_FILE_BYTES + 1024 * 1024
  const meta = (request: FastifyRequest) => ({
    opId: typeof request.headers['idempotency-key'] === 'string' ? request.headers['idempotency-key'] : null
  })
  fastify.addHook('onRequest', fastify.authenticate)
  // A mutation refused by its schema, path or content type never reaches the service, which logs
  // every other failure: log it here, so every mutation is in its session's activity.
  fastify.addHook('onError', async function recordRejected (request, reply, error) {
    const type = request.routeOptions.config.activity
    if (type === undefined || (request.actor as Actor | null) === null) return
    const params = request.params as { id?: unknown } | undefined
    const body = request.body as { type?: unknown, path?: unknown } | null | undefined
    // A file route's path as sent (still percent-encoded: that may be what was wrong with it).
    const raw = RESOURCE_PATH.files.exec(request.raw.url ?? '')
    const path = raw === null ? body?.path : raw[1] ?? '/'
    files.rejected(request.actor, {
      type,
      workspaceId: typeof params?.id === 'string' ? params.id : null,
      op: typeof body?.type === 'string' ? body.type : null,
      path: typeof path === 'string' ? path : null
    }, error, reply.elapsedTime)
  })

  // Each route also without a path, so `/files` itself names the root (readable, never writable).
  for (const url of ['/:id/files', '/:id/files/*']) {
    fastify.get(url, {
      schema: {
        tags,
        summary: 'Read a file (meta + content) or a directory (meta + children); ?format=raw for the bytes; ?lines=A-B for some lines of a text file',
        params: FileParams,
        querystring: ReadQuery,
        headers: ReadHeaders,
        response: responses({ 200: Entry, 304: Type.Null() })
      }
    }, async function readFile (request, reply) {
      const raw = request.query.format === 'raw'
      const { revision: at, lines } = request.query
      const { entry, bytes, revision, httpEtag } = await files.read(request.actor, {
        workspaceId: request.params.id,
        path: filePath(request, 'files'),
        ...(at === undefined ? {} : { revision: at }),
        ...(lines === undefined ? {} : { lines })
      })
      void reply.header('etag', httpEtag).header('x-revision', String(revision))
      if (noneMatch(request.headers['if-none-match'], httpEtag)) return await reply.code(304).send(null)
      if (!raw) return entry
      if (bytes === undefined) throw errors.isADirectory(entry.path)
      // A ranged raw read: those lines' bytes, the range in headers.
      if (entry.lines !== undefined) void reply.header('x-lines', `${entry.lines.start}-${entry.lines.end}`).header('x-total-lines', String(entry.totalLines))
      // Raw bytes bypass the JSON serializer, so the reply is widened from the schema-typed one.
      return await (reply as FastifyReply).headers(rawReadHeaders(entry.mimeType, entry.name)).send(bytes)
    })

    fastify.put(url, {
      bodyLimit,
      config: { activity: MutationType.write },
      schema: {
        tags,
        summary: 'Write a file (created with its missing parents, or replaced); If-Match / If-None-Match: * honoured',
        params: FileParams,
        headers: WriteHeaders,
        body: WriteBody,
        response: responses({ 200: WriteResult, 201: WriteResult })
      }
    }, async function writeFile (request, reply) {
      const { 'if-match': ifMatch, 'if-none-match': ifNoneMatch } = request.headers
      const { statusCode, body } = await files.write(request.actor, {
        workspaceId: request.params.id,
        path: filePath(request, 'files'),
        ...request.body,
        ...(ifMatch === undefined ? {} : { ifMatch }),
        ...(ifNoneMatch === undefined ? {} : { ifNoneMatch })
      }, meta(request))
      void reply.header('etag', quoted(body.file.etag))
      return await reply.code(statusCode).send(body)
    })

    fastify.delete(url, {
      config: { activity: MutationType.delete },
      schema: {
        tags,
        summary: 'Delete a file, or a directory with everything under it; If-Match honoured',
        params: FileParams,
        headers: WriteHeaders,
        response: responses({ 200: DeleteResult })
      }
    }, async function deleteFile (request, reply) {
      const ifMatch = request.headers['if-match']
      const { statusCode, body } = await files.remove(request.actor, {
        workspaceId: request.params.id,
        path: filePath(request, 'files'),
        ...(ifMatch === undefined ? {} : { ifMatch })
      }, meta(request))
      return await reply.code(statusCode).send(body)
    })
  }

  fastify.post('/:id/operations', {
    bodyLimit,
    config: { activity: MutationType.operation },
    schema: {
      tags,
      summary: 'Apply one operation: create, update, delete, move, copy, mkdir or edit (text replacements, answered with a unified diff)',
      params: WorkspaceParams,
      headers: SessionHeader,
      body: Operation,
      response: responses({ 200: OperationResult })
    }
  }, async function applyOperation (request, reply) {
    const { statusCode, body } = await files.apply(request.actor, request.params.id, request.body, meta(request))
    return await reply.code(statusCode).send(body)
  })

  fastify.post('/:id/operations/batch', {
    bodyLimit,
    config: { activity: MutationType.batch },
    schema: {
      tags,
      summary: 'Apply 1–1000 operations in one transaction: all or none',
      params: WorkspaceParams,
      headers: SessionHeader,
      body: BatchBody,
      response: responses({ 200: BatchResult })
    }
  }, async function applyBatch (request, reply) {
    const { statusCode, body } = await files.batch(request.actor, request.params.id, request.body.operations, meta(request))
    return await reply.code(statusCode).send(body)
  })

  for (const url of ['/:id/history', '/:id/history/*']) {
    fastify.get(url, {
      schema: {
        tags,
        summary: 'The changes that touched a path, newest first, following moves',
        params: FileParams,
        querystring: HistoryQuery,
        response: responses({ 200: HistoryResult })
      }
    }, async function history (request) {
      return await files.history(request.actor, request.params.id, filePath(request, 'history'), request.query.limit, request.query.cursor)
    })
  }

  fastify.post('/:id/revert', {
    config: { activity: MutationType.revert },
    schema: {
      tags,
      summary: 'Undo a session\'s changes ({ sessionId }) or every change after a revision ({ toRevision }), as new changes',
      params: WorkspaceParams,
      headers: SessionHeader,
      body: RevertBody,
      response: responses({ 200: RevertResult })
    }
  }, async function revertChanges (request, reply) {
    const { statusCode, body } = await files.revert(request.actor, request.params.id, request.body, meta(request))
    return await reply.code(statusCode).send(body)
  })

  fastify.get('/:id/tree', {
    schema: {
      tags,
      summary: 'Entries under a path, sorted by path, keyset-paginated',
      params: WorkspaceParams,
      querystring: TreeQuery,
      response: responses({ 200: TreeResult })
    }
  }, async function tree (request) {
    return await files.tree(request.actor, request.params.id, request.query)
  })

  fastify.get('/:id/changes', {
    schema: {
      tags,
      summary: 'The change feed after `since`; reset: true when `since` is no longer retained',
      params: WorkspaceParams,
      querystring: ChangesQuery,
      response: responses({ 200: ChangesResult })
    }
  }, async function changes (request) {
    return await files.changes(request.actor, request.params.id, request.query.since, request.query.limit)
  })
}
export default fileRoutes
