import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { readEntry, listTree } from '../../src/files.js'
import { applyOperations, type OpInput } from '../../src/operations.js'
import { listChanges } from '../../src/changes.js'
import { pathFromUrl } from '../../src/paths.js'
import { errors } from '../../src/errors.js'
import { responses, SessionHeader, Uuid, WorkspaceParams } from '../../schemas/common.js'
import {
  BatchBody, BatchResult, ChangesQuery, ChangesResult, DeleteResult, Entry, Operation, OperationResult, ReadQuery,
  TreeQuery, TreeResult, WriteBody, WriteResult
} from '../../schemas/files.js'

const FileParams = Type.Object({ id: Uuid, '*': Type.Optional(Type.String()) })
const ReadHeaders = Type.Object({ 'if-none-match': Type.Optional(Type.String()) })
const WriteHeaders = Type.Composite([SessionHeader, Type.Object({
  'if-match': Type.Optional(Type.String({ maxLength: 100 })),
  'if-none-match': Type.Optional(Type.String({ maxLength: 100 }))
})])

/** The path a `/files/{path}` URL names, from the raw URL so that `%2F` stays visible. */
function filePath (request: FastifyRequest): string {
  const pathname = request.raw.url?.split('?')[0] ?? ''
  const match = /\/workspaces\/[^/]+\/files(\/.*)?$/.exec(pathname)
  return pathFromUrl(match?.[1] ?? '')
}

const quoted = (etag: string): string => `"${etag}"`

/** If-None-Match on a read: true when one of the listed etags (or `*`) is current. */
function notModified (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  return header.split(',').map(t => t.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')).some(t => t === '*' || t === etag)
}

/** Files, operations, the tree and the change feed of a workspace: /v1/workspaces/{id}/… */
const fileRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, config } = fastify
  const tags = ['files']
  // Bodies carry file content: room for base64 (4/3) and JSON escaping, over the file limit.
  const bodyLimit = 2 * config.MAX_FILE_BYTES + 1024 * 1024
  const writeOptions = (request: FastifyRequest) => ({
    maxFileBytes: config.MAX_FILE_BYTES,
    opId: typeof request.headers['idempotency-key'] === 'string' ? request.headers['idempotency-key'] : null
  })
  fastify.addHook('onRequest', fastify.authenticate)

  for (const url of ['/:id/files', '/:id/files/*']) {
    fastify.get(url, {
      schema: {
        tags,
        summary: 'Read a file (meta + content) or a directory (meta + children); ?format=raw for the bytes',
        params: FileParams,
        querystring: ReadQuery,
        headers: ReadHeaders,
        response: responses({ 200: Entry, 304: Type.Null() })
      }
    }, async function readFile (request, reply) {
      const raw = request.query.format === 'raw'
      const { entry, bytes } = await readEntry(db, request.actor, request.params.id, filePath(request))
      void reply.header('etag', quoted(entry.etag))
      if (notModified(request.headers['if-none-match'], entry.etag)) return await reply.code(304).send(null)
      if (!raw) return entry
      if (bytes === undefined) throw errors.isADirectory(entry.path)
      // Raw bytes bypass the JSON serializer, so the reply is widened from the schema-typed one.
      return await (reply as FastifyReply).type(entry.mimeType ?? 'application/octet-stream').send(bytes)
    })
  }

  fastify.put('/:id/files/*', {
    bodyLimit,
    schema: {
      tags,
      summary: 'Write a file (created with its missing parents, or replaced); If-Match / If-None-Match: * honoured',
      params: FileParams,
      headers: WriteHeaders,
      body: WriteBody,
      response: responses({ 200: WriteResult, 201: WriteResult })
    }
  }, async function writeFile (request, reply) {
    const ifNoneMatch = request.headers['if-none-match']
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw errors.validation('If-None-Match on a write must be *')
    const op: OpInput = {
      type: 'update',
      upsert: true,
      path: filePath(request),
      ...request.body,
      ...(request.headers['if-match'] === undefined ? {} : { ifMatch: request.headers['if-match'] }),
      ifNoneMatch: ifNoneMatch !== undefined
    }
    const { results, revision } = await applyOperations(db, request.actor, request.params.id, [op], writeOptions(request))
    const result = results[0]
    if (result === undefined || !('path' in result.data)) throw errors.internal()
    void reply.header('etag', quoted(result.data.etag))
    return await reply.code(result.created ? 201 : 200).send({ file: result.data, revision })
  })

  fastify.delete('/:id/files/*', {
    schema: {
      tags,
      summary: 'Delete a file, or a directory with everything under it; If-Match honoured',
      params: FileParams,
      headers: WriteHeaders,
      response: responses({ 200: DeleteResult })
    }
  }, async function deleteFile (request) {
    const op: OpInput = {
      type: 'delete',
      path: filePath(request),
      ...(request.headers['if-match'] === undefined ? {} : { ifMatch: request.headers['if-match'] })
    }
    const { results, revision } = await applyOperations(db, request.actor, request.params.id, [op], writeOptions(request))
    const data = results[0]?.data
    if (data === undefined || !('deleted' in data)) throw errors.internal()
    return { revision, deleted: data.deleted }
  })

  fastify.post('/:id/operations', {
    bodyLimit,
    schema: {
      tags,
      summary: 'Apply one operation: create, update, delete, move, copy or mkdir',
      params: WorkspaceParams,
      headers: SessionHeader,
      body: Operation,
      response: responses({ 200: OperationResult })
    }
  }, async function applyOperation (request) {
    const { results, revision } = await applyOperations(db, request.actor, request.params.id, [request.body], writeOptions(request))
    const result = results[0]
    if (result === undefined) throw errors.internal()
    return { success: true as const, data: result.data, revision, timestamp: new Date() }
  })

  fastify.post('/:id/operations/batch', {
    bodyLimit,
    schema: {
      tags,
      summary: 'Apply 1–1000 operations in one transaction: all or none',
      params: WorkspaceParams,
      headers: SessionHeader,
      body: BatchBody,
      response: responses({ 200: BatchResult })
    }
  }, async function applyBatch (request) {
    const { results, revision } = await applyOperations(db, request.actor, request.params.id, request.body.operations, writeOptions(request))
    return { results: results.map(r => ({ data: r.data, revision: r.revision })), revision }
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
    return await listTree(db, request.actor, request.params.id, request.query)
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
    return await listChanges(db, request.actor, request.params.id, request.query.since, request.query.limit)
  })
}
export default fileRoutes
