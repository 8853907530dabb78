import t from 'tap'
import WebSocket from 'ws'
import { build, createWorkspace, listen, registerUser } from '../helpers/app.js'
import { connect } from '../helpers/ws.js'

t.test('ws smoke', async t => {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  const u = await registerUser(app)
  const ws = await createWorkspace(app, u)
  await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/a.txt`, headers: u.auth, payload: { content: 'a' } })
  const sock = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`)
  await new Promise(resolve => sock.once('open', resolve))
  const msgs: Array<Record<string, unknown>> = []
  sock.on('message', d => msgs.push(JSON.parse(d.toString()) as Record<string, unknown>))
  sock.send(JSON.stringify({ type: 'auth', token: u.token }))
  sock.send(JSON.stringify({ type: 'subscribe', channel: `workspace:${ws}`, since: 0 }))
  await new Promise(resolve => setTimeout(resolve, 300))
  await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/b.txt`, headers: u.auth, payload: { content: 'b' } })
  sock.send(JSON.stringify({ type: 'rpc', id: 1, method: 'files.write', params: { workspaceId: ws, path: '/c.txt', content: 'c', ifMatch: '"99"' } }))
  sock.send('{bad')
  sock.send(JSON.stringify({ type: 'ping' }))
  await new Promise(resolve => setTimeout(resolve, 500))
  t.same(msgs.map(m => m.type), ['connected', 'event', 'subscribed', 'event', 'rpc.error', 'error', 'pong'], JSON.stringify(msgs))
  sock.close()
})

t.test('rpc files.read takes the route\'s query parameters: revision and format', async t => {
  const app = await build(t)
  const base = await listen(app)
  const u = await registerUser(app)
  const ws = await createWorkspace(app, u)
  for (const content of ['first', 'second']) {
    await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/a.txt`, headers: u.auth, payload: { content } })
  }
  const client = await connect(t, base, { token: u.token })
  const old = await client.rpc('files.read', { workspaceId: ws, path: '/a.txt', revision: 1 })
  t.equal(old.type, 'rpc.result')
  t.equal((old.result as { content: string }).content, 'first', 'as it was after revision 1')
  const now = await client.rpc('files.read', { workspaceId: ws, path: '/a.txt', format: 'json' })
  t.equal((now.result as { content: string }).content, 'second')
  const bad = await client.rpc('files.read', { workspaceId: ws, path: '/a.txt', format: 'xml' })
  t.equal(bad.type, 'rpc.error')
  t.equal((bad.error as { code: string }).code, 'VALIDATION_FAILED')
})
