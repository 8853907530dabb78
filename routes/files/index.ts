import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { pathFromUrl } from '../../src/files/paths.js'
import { rawReadHeaders } from '../../src/files/content.js'
import { errors } from '../../src/core/errors.js'
import { noneMatch } from '../../src/core/http.js'
import { MutationType, requestContext, requestMeta } from '../../src/mutations/activity.js'
import type { Actor } from '../../src/accounts/auth.js'
import { described, noContent, ResponseHeaders, responses, SessionHeader, Uuid, WorkspaceParams } from '../../schemas/common.js'
import { Examples, RouteErrors } from '../../schemas/responses.js'
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

/** The Content-Type Fastify gives a serialized object. */
const JSON_TYPE = 'application/json; charset=utf-8'

/** The read route's own serializer of an entry (its 200 application/json schema): what returning the entry would use. */
function entryJson (reply: FastifyReply): (entry: Entry) => string {
  const serialize = reply.getSerializationFunction('200', 'application/json')
  if (serialize === undefined) throw errors.internal()
  return serialize
}

/** What a raw read (?format=raw) adds to the headers (src/files/content.ts `rawReadHeaders`, and the ranged read's). */
const RAW_HEADERS = {
  'Content-Disposition': Type.String({ description: '?format=raw, every type but the inert ones (docs/api.md): attachment; filename*=UTF-8\'\'<name>' }),
  'X-Lines': Type.String({ description: '?format=raw&lines=: the lines sent, A-B' }),
  'X-Total-Lines': Type.Integer({ description: '?format=raw&lines=: the lines the whole file has' })
}

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
  const meta = requestMeta
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
      path: typeof path === 'string' ? path : null,
      context: requestContext(request)
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
        response: responses({
          200: {
            description: 'The entry: JSON (meta + content, or meta + children); with ?format=raw the file\'s bytes, sent with the file\'s own type (its mimeType) as Content-Type',
            headers: { ...ResponseHeaders.etag, ...ResponseHeaders.revision, ...RAW_HEADERS },
            content: {
              'application/json': { schema: Entry, example: Examples.read },
              'application/octet-stream': { schema: Type.String({ format: 'binary', description: '?format=raw: the bytes; the Content-Type is the file\'s mimeType (application/octet-stream when it has none)' }) }
            }
          },
          304: noContent('Not Modified: If-None-Match names the current ETag', { ...ResponseHeaders.etag, ...ResponseHeaders.revision })
        }, ...RouteErrors.fileRead)
      }
    }, async function readFile (request, reply) {
      const raw = request.query.format === 'raw'
      const { revision: at, lines } = request.query
      if (!raw && at === undefined && lines === undefined) {
        // The plain read: its JSON answer as bytes, written by this route's serializer once per
        // revision and kept in the read cache. The same bytes and headers as the entry returned.
        const target = { workspaceId: request.params.id, path: filePath(request, 'files') }
        const { body, revision, httpEtag } = files.keptJson(request.actor, target) ?? await files.readJson(request.actor, target, entry => entryJson(reply)(entry))
        void reply.header('etag', httpEtag).header('x-revision', String(revision))
        if (noneMatch(request.headers['if-none-match'], httpEtag)) return await reply.code(304).send(null)
        return await (reply as FastifyReply).header('content-type', JSON_TYPE).send(body)
      }
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
        body: described(WriteBody, { example: Examples.write }),
        response: responses({
          200: described(WriteResult, { description: 'Replaced', headers: ResponseHeaders.etag }),
          201: described(WriteResult, { description: 'Created', headers: ResponseHeaders.etag, example: Examples.writeResult })
        }, ...RouteErrors.fileMutation)
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
        response: responses({ 200: described(DeleteResult, { description: 'Deleted' }) }, ...RouteErrors.fileMutation)
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
      response: responses({ 200: described(OperationResult, { description: 'Applied (or, with dryRun, computed)' }) }, ...RouteErrors.fileMutation)
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
      body: described(BatchBody, { example: Examples.batch }),
      response: responses({ 200: described(BatchResult, { description: 'Every operation applied, in one transaction', example: Examples.batchResult }) }, ...RouteErrors.fileMutation)
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
        response: responses({ 200: described(HistoryResult, { description: 'The changes, newest first' }) }, ...RouteErrors.history)
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
      response: responses({ 200: described(RevertResult, { description: 'Reverted (or, with dryRun, computed)' }) }, ...RouteErrors.revert)
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
      response: responses({ 200: described(TreeResult, { description: 'A page of entries', example: Examples.tree }) }, ...RouteErrors.tree)
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
      response: responses({ 200: described(ChangesResult, { description: 'The changes after `since`', example: Examples.changes }) }, ...RouteErrors.changes)
    }
  }, async function changes (request) {
    return await files.changes(request.actor, request.params.id, request.query.since, request.query.limit)
  })
}
export default fileRoutes
