import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { publicError, toAppError } from '../../src/core/errors.js'
import type { SearchEvents } from '../../src/search/content.js'
import { described, responses, ResponseHeaders, WorkspaceParams } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'
import { FindQuery, FindResult, SearchBody, SearchResult } from '../../schemas/search.js'

const NDJSON = 'application/x-ndjson'

/**
 * NDJSON lines: `{"type":"match",…}` per match, then `{"type":"summary",…}`; a failure after the
 * answer started is a last `{"type":"error",code,message}` line.
 */
async function * ndjson (events: SearchEvents, exposeInternal: boolean): AsyncGenerator<string> {
  try {
    let step = await events.next()
    while (step.done !== true) {
      yield JSON.stringify({ type: 'match', ...step.value }) + '\n'
      step = await events.next()
    }
    yield JSON.stringify({ type: 'summary', ...step.value }) + '\n'
  } catch (err) {
    const e = publicError(toAppError(err), exposeInternal)
    yield JSON.stringify({ type: 'error', code: e.code, message: e.message }) + '\n'
  } finally {
    // closed early (the client went away): end the search, which awaits its read in flight
    await events.return(undefined as never)
  }
}

/** Content search and the fuzzy file finder: /v1/workspaces/{id}/search and /find. */
const searchRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { searchService: search, config } = fastify
  const tags = ['search']
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.post('/:id/search', {
    schema: {
      tags,
      summary: 'Search file contents (ripgrep semantics, RE2 regexes) at the head or a past revision; Accept: application/x-ndjson streams',
      params: WorkspaceParams,
      body: SearchBody,
      response: responses({
        200: {
          description: 'The matches and a summary; with Accept: application/x-ndjson streamed, one JSON object a line (X-Revision: the revision searched)',
          headers: ResponseHeaders.revision,
          content: {
            'application/json': { schema: SearchResult },
            [NDJSON]: { schema: Type.String({ description: '{"type":"match",…} per match, then {"type":"summary",…}; a failure after the answer started is a last {"type":"error",code,message} line' }) }
          }
        }
      }, ...RouteErrors.search)
    }
  }, async function searchContent (request, reply) {
    const params = { workspaceId: request.params.id, ...request.body }
    if (request.headers.accept?.includes(NDJSON) !== true) return await search.search(request.actor, params)
    const controller = new AbortController()
    // The client closing the request cancels the search: no query starts after that.
    reply.raw.once('close', () => { if (!reply.raw.writableFinished) controller.abort() })
    const run = await search.open(request.actor, params, { signal: controller.signal })
    const stream = Readable.from(ndjson(run.events, config.NODE_ENV === 'development'), { objectMode: false })
    // A stream bypasses the response schema, so the reply is widened from the schema-typed one.
    return await (reply as FastifyReply).header('content-type', `${NDJSON}; charset=utf-8`).header('x-revision', String(run.revision)).send(stream)
  })

  fastify.get('/:id/find', {
    schema: {
      tags,
      summary: 'Fuzzy-find files by path (fzf-style ranking): the best `limit` with their score and matched positions',
      params: WorkspaceParams,
      querystring: FindQuery,
      response: responses({ 200: described(FindResult, { description: 'The best matches' }) }, ...RouteErrors.find)
    }
  }, async function findFiles (request) {
    return await search.find(request.actor, { workspaceId: request.params.id, ...request.query })
  })
}
export default searchRoutes
