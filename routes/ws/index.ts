import type { FastifyPluginAsync } from 'fastify'
import { Close, Connection } from '../../src/live/connection.js'
import { bearerToken } from '../../src/core/http.js'

/**
 * GET /v1/ws: one socket per tab, multiplexing every channel (see docs/api.md, "WebSocket").
 * Protocol pings every WS_HEARTBEAT_MS; a peer that missed the previous pong is terminated.
 */
const wsRoutes: FastifyPluginAsync = async (fastify) => {
  const connections = new Set<Connection>()
  const sockets = new Map<Connection, import('ws').WebSocket>()

  const heartbeat = setInterval(() => {
    for (const [connection, socket] of sockets) {
      if (!connection.alive) {
        socket.terminate()
        continue
      }
      connection.alive = false
      socket.ping()
    }
  }, fastify.config.WS_HEARTBEAT_MS)
  heartbeat.unref()
  fastify.addHook('onClose', async () => { clearInterval(heartbeat) })

  // Membership changes announced by any instance: affected sockets recheck their access.
  const onAccessChange = (workspaceId: string, userIds: string[]): void => {
    for (const connection of connections) {
      if (connection.actor !== null && userIds.includes(connection.actor.userId)) void connection.recheckAccess(workspaceId)
    }
  }
  fastify.fanout.accessListeners.add(onAccessChange)
  fastify.addHook('onClose', async () => { fastify.fanout.accessListeners.delete(onAccessChange) })

  fastify.get('/ws', {
    websocket: true,
    schema: { tags: ['websocket'], summary: 'WebSocket: live change events, broadcast and RPC (see docs/api.md)', hide: false }
  }, function websocket (socket, request) {
    const connection = new Connection(fastify, socket, request.raw.socket, request.log)
    connections.add(connection)
    sockets.set(connection, socket)
    socket.on('pong', () => { connection.alive = true })
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        connection.close(Close.policy, 'binary frames are not accepted')
        return
      }
      connection.receive(data.toString())
    })
    socket.on('close', code => {
      connections.delete(connection)
      sockets.delete(connection)
      void connection.dispose(code)
    })
    socket.on('error', err => { request.log.info({ err: err.message }, 'websocket error') })

    const header = request.headers.authorization
    const token = bearerToken(header)
    const session = request.headers['x-session-id']
    if (header !== undefined && token === undefined) {
      connection.close(Close.unauthenticated, 'malformed Authorization header')
      return
    }
    void connection.start(token, typeof session === 'string' ? session : undefined)
  })
}
export default wsRoutes
