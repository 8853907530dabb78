import type { FastifyPluginAsync } from 'fastify'
import { Connection } from '../../src/live/connection.js'

/**
 * GET /v1/ws: one socket per tab, multiplexing every channel (see docs/api.md, "WebSocket"); the
 * protocol is src/live/connection.ts. Protocol pings every WS_HEARTBEAT_MS; a peer that missed
 * the previous pong is terminated. Shutdown closes the sockets with 1001 (plugins/external/websocket.ts).
 */
const wsRoutes: FastifyPluginAsync = async (fastify) => {
  const connections = new Set<Connection>()

  const heartbeat = setInterval(function heartbeat () {
    for (const connection of connections) connection.heartbeat()
  }, fastify.config.WS_HEARTBEAT_MS)
  heartbeat.unref()
  fastify.addHook('onClose', async function stopHeartbeat () { clearInterval(heartbeat) })

  // Membership changes announced by any instance: affected sockets recheck their access.
  const unlisten = fastify.fanout.onAccessChange(function accessChanged (workspaceId, userIds) {
    for (const connection of connections) void connection.accessChanged(workspaceId, userIds)
  })
  fastify.addHook('onClose', async function stopAccessChecks () { unlisten() })

  fastify.get('/ws', {
    websocket: true,
    schema: { tags: ['websocket'], summary: 'WebSocket: live change events, broadcast and RPC (see docs/api.md)', hide: false }
  }, function websocket (socket, request) {
    const connection = new Connection(fastify, socket, request.raw.socket, request.log)
    connections.add(connection)
    socket.on('close', () => { connections.delete(connection) })
    connection.start(request.headers)
  })
}
export default wsRoutes
