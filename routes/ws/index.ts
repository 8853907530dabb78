import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { errors } from '../../src/core/errors.js'
import { isUuid } from '../../src/core/validation.js'
import { Connection } from '../../src/live/connection.js'
import { Close } from '../../src/live/protocol.js'
import { Sockets } from '../../src/live/sockets.js'

/**
 * GET /v1/ws: one socket per tab, multiplexing every channel (see docs/api.md, "WebSocket"); the
 * protocol is src/live/connection.ts. Protocol pings every WS_HEARTBEAT_MS; a peer that missed
 * the previous pong is terminated. Shutdown closes the sockets with 1001 (plugins/external/websocket.ts).
 * An upgrade is refused before it happens (an HTTP answer, as REST would give) when X-Session-Id
 * is not a UUID (400) or the instance holds WS_MAX_CONNECTIONS sockets (503).
 */
const wsRoutes: FastifyPluginAsync = async (fastify) => {
  const { config } = fastify
  const connections = new Sockets<Connection>(config.WS_MAX_CONNECTIONS, config.WS_MAX_SOCKETS_PER_USER)

  // Route hooks run before @fastify/websocket upgrades; what they throw is answered over HTTP.
  async function admitUpgrade (request: FastifyRequest): Promise<void> {
    const session = request.headers['x-session-id']
    // REST's check and answer (plugins/app/auth.ts): it became `from.sessionId` and activity rows.
    if (session !== undefined && !isUuid(session)) throw errors.invalidSessionHeader()
    if (connections.full) throw errors.unavailable('too many WebSocket connections on this instance (WS_MAX_CONNECTIONS); retry later')
  }

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

  // Logout on any instance: the session's sockets here close with 4401 (within a second).
  const unlistenEnds = fastify.endedSessions.onEnded(function sessionEnded (sessionId) {
    for (const connection of connections) connection.sessionEnded(sessionId)
  })
  fastify.addHook('onClose', async function stopSessionEnds () { unlistenEnds() })

  fastify.get('/ws', {
    websocket: true,
    onRequest: admitUpgrade,
    schema: { tags: ['websocket'], summary: 'WebSocket: live change events, broadcast and RPC (see docs/api.md)', hide: false }
  }, function websocket (socket, request) {
    const connection = new Connection(fastify, socket, request, connections)
    socket.on('close', () => { connections.delete(connection) })
    // Upgrades admitted together can pass the check above at once: the last ones learn it only now.
    if (!connections.add(connection)) {
      connection.close(Close.tryAgainLater, 'too many WebSocket connections on this instance (WS_MAX_CONNECTIONS)')
      return
    }
    connection.start()
  })
}
export default wsRoutes
