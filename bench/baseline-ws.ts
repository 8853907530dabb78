import { createServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'

/**
 * The fan-out baseline: a bare `ws` server. Subscribers connect to `/`; the load generator
 * connects to `/control` and every text frame it sends is broadcast, as the same bytes, to every
 * subscriber (serialised once, one send per socket: what the server's fan-out does per event).
 * No compression, as the bench's clients negotiate none with the real server either.
 */

const subscribers = new Set<WebSocket>()
const http = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
    return
  }
  res.writeHead(404).end()
})
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false })

wss.on('connection', function connection (socket, request) {
  if (request.url === '/control') {
    socket.on('message', function broadcast (data, isBinary) {
      const frame = isBinary ? data : data.toString()
      for (const s of subscribers) s.send(frame)
    })
    return
  }
  subscribers.add(socket)
  socket.on('close', () => { subscribers.delete(socket) })
  socket.on('error', () => {})
})

http.listen(Number(process.env.PORT ?? 3200), process.env.HOST ?? '127.0.0.1')
process.once('SIGTERM', () => {
  for (const s of subscribers) s.terminate()
  wss.close()
  http.close()
})
