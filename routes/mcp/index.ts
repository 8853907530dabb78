import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../../src/core/errors.js'
import { ErrorSets, noContent, responses, WorkspaceParams } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'
import { McpHeaders } from '../../schemas/mcp.js'

/**
 * The MCP endpoint of a workspace: /v1/workspaces/{id}/mcp (docs/api.md, "MCP"). POST carries
 * JSON-RPC messages to the SDK's Streamable HTTP transport (src/mcp/server.ts) and answers JSON.
 * The server is stateless (any instance answers any request), so there is no stream to GET and
 * no session to DELETE: both answer 405, which MCP clients take as "not offered".
 */
const mcpRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { mcp, config } = fastify
  const tags = ['mcp']
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.post('/:id/mcp', {
    // Tool arguments carry file content, as the file routes' bodies do.
    bodyLimit: 2 * config.MAX_FILE_BYTES + 1024 * 1024,
    schema: {
      tags,
      summary: 'MCP (Streamable HTTP): a JSON-RPC message, answered as JSON; tools over this workspace\'s files',
      params: WorkspaceParams,
      headers: McpHeaders,
      body: Type.Unknown({ description: 'a JSON-RPC request or notification (or a batch of them)' }),
      response: responses({
        200: Type.Unknown({ description: 'The JSON-RPC response (or batch); a tool\'s failure is a result with isError, a protocol failure a JSON-RPC error. What the transport itself refuses (no Accept listing application/json and text/event-stream: 406; an unsupported MCP-Protocol-Version or a message that is not JSON-RPC: 400) is answered with a JSON-RPC error body, not the error shape.' }),
        202: noContent('Accepted: the message was notifications or responses only'),
        406: Type.Object({
          jsonrpc: Type.Literal('2.0'),
          id: Type.Null(),
          error: Type.Object({ code: Type.Integer(), message: Type.String() })
        }, { description: 'Not Acceptable: Accept does not list application/json and text/event-stream (a JSON-RPC error body, from the transport)' })
      }, ...RouteErrors.mcp)
    }
  }, async function mcpPost (request, reply) {
    const { response, sessionId } = await mcp.handle({
      actor: request.actor,
      workspaceId: request.params.id,
      log: request.log,
      admit: async () => { await fastify.chargeUser(request, request.actor) }
    }, {
      xSessionId: request.headers['x-session-id'],
      mcpSessionId: request.headers['mcp-session-id']
    }, webRequest(request), request.body)
    for (const [name, value] of response.headers) void reply.header(name, value)
    if (sessionId !== undefined) void reply.header('mcp-session-id', sessionId)
    const text = await response.text()
    // A notification's 202 has no body at all (send(null) would write `null`).
    return await (text === '' ? reply.code(response.status).send() : reply.code(response.status).send(text))
  })

  for (const method of ['GET', 'DELETE'] as const) {
    fastify.route({
      method,
      url: '/:id/mcp',
      schema: { tags, summary: 'Not offered (the MCP server is stateless): 405', params: WorkspaceParams, headers: McpHeaders, response: responses({}, ...RouteErrors.mcpNotAllowed, ...(method === 'DELETE' ? [ErrorSets.body] : [])) },
      handler: async function mcpNotAllowed (request) {
        await mcp.access(request.actor, request.params.id)
        throw errors.methodNotAllowed('POST')
      }
    })
  }
}
export default mcpRoutes

/** The request as the SDK's web-standard transport reads it: method and headers (the body is already parsed). */
function webRequest (request: FastifyRequest): Request {
  const headers = new Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    if (typeof value === 'string') headers.set(name, value)
    else if (Array.isArray(value)) for (const v of value) headers.append(name, v)
  }
  return new Request(`http://localhost${request.url}`, { method: request.method, headers })
}
