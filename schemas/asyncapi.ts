import type { TSchema } from '@sinclair/typebox'
import { ClientMessage, RpcParams, ServerMessages } from './ws.js'

/**
 * The WebSocket protocol as an AsyncAPI 3.0 document (served at /docs/asyncapi.json), built from
 * the same TypeBox schemas that validate the client's messages and type the server's: it cannot
 * drift from the code. The application it describes is the server: it receives the client's
 * messages and sends its own.
 * @see https://www.asyncapi.com/docs/reference/specification/v3.0.0
 */

/** A TypeBox schema as plain JSON Schema (TypeBox's symbols dropped). */
const plain = (schema: TSchema): Record<string, unknown> => JSON.parse(JSON.stringify(schema)) as Record<string, unknown>

/** The `type` literal of a message schema: its name. */
function typeOf (schema: TSchema): string {
  const type = (plain(schema).properties as Record<string, { const?: unknown }> | undefined)?.type?.const
  if (typeof type !== 'string') throw new Error('a WebSocket message schema without a type literal')
  return type
}

/** `rpc` as one message per method, each with its own params, so a client generator sees them all. */
function rpcPayload (generic: TSchema): Record<string, unknown> {
  const base = plain(generic)
  const properties = base.properties as Record<string, unknown>
  return {
    oneOf: Object.entries(RpcParams).map(([method, params]) => ({
      ...base,
      title: `rpc ${method}`,
      properties: { ...properties, method: { type: 'string', const: method }, params: plain(params) },
      required: ['type', 'id', 'method', 'params']
    }))
  }
}

export function asyncApiDocument (version: string): Record<string, unknown> {
  const received = Object.fromEntries(ClientMessage.anyOf.map(schema => {
    const name = typeOf(schema)
    return [`client.${name}`, { name, title: `${name} (client → server)`, payload: name === 'rpc' ? rpcPayload(schema) : plain(schema) }]
  }))
  const sent = Object.fromEntries(Object.entries(ServerMessages).map(([name, schema]) =>
    [`server.${name}`, { name, title: `${name} (server → client)`, payload: plain(schema) }]))
  const ref = (name: string): { $ref: string } => ({ $ref: `#/channels/ws/messages/${name}` })
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Workbench API: WebSocket',
      version,
      description: 'One socket per tab (`GET /v1/ws`) multiplexing every workspace channel: live change events with gap-free revisions and resume from `since`, broadcast, and RPC. The contract, with close codes and limits: docs/api.md, "WebSocket".'
    },
    defaultContentType: 'application/json',
    channels: {
      ws: {
        address: '/v1/ws',
        title: 'The WebSocket',
        description: 'Authenticate with `Authorization: Bearer` on the upgrade, or send `auth` first within 5 s. Channels inside it are named `workspace:<id>`.',
        messages: { ...received, ...sent }
      }
    },
    operations: {
      // Message keys are `client.<type>` and `server.<type>` (broadcast goes both ways).
      ...Object.fromEntries(Object.keys(received).map(key => [`receive.${key.slice(7)}`, { action: 'receive', channel: { $ref: '#/channels/ws' }, messages: [ref(key)] }])),
      ...Object.fromEntries(Object.keys(sent).map(key => [`send.${key.slice(7)}`, { action: 'send', channel: { $ref: '#/channels/ws' }, messages: [ref(key)] }]))
    }
  }
}
