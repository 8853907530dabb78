import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'

/**
 * WebSocket support. `maxPayload` bounds every frame, after permessage-deflate decompression too
 * (ws closes with 1009 past it). Server shutdown closes every socket with 1001 before the HTTP
 * server stops, so clients reconnect elsewhere and resume with `since`.
 * @see https://github.com/fastify/fastify-websocket
 */
export default fp(async function ws (fastify) {
  await fastify.register(websocket, {
    options: {
      maxPayload: fastify.config.WS_MAX_PAYLOAD,
      perMessageDeflate: { threshold: 1024, serverNoContextTakeover: true, clientNoContextTakeover: true },
      clientTracking: true
    },
    preClose: async function closeSockets () {
      const server = fastify.websocketServer
      for (const client of server.clients) client.close(1001, 'server shutting down')
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  })
}, { name: 'websocket', dependencies: ['config'] })
