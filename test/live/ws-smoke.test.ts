import t from 'tap'
import { build, createWorkspace, listen, registerUser, sleep } from '../helpers/app.js'
import { connect } from '../helpers/ws.js'

t.test('ws smoke', async t => {
  const app = await build(t)
  const base = await listen(app)
  const u = await registerUser(app)
  const ws = await createWorkspace(app, u)
  await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/a.txt`, headers: u.auth, payload: { content: 'a' } })
  // no token: authenticated by the first message, as a browser would
  const sock = await connect(t, base)
  sock.send({ type: 'auth', token: u.token })
  sock.send({ type: 'subscribe', channel: `workspace:${ws}`, since: 0 })
  await sleep(300)
  await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/b.txt`, headers: u.auth, payload: { content: 'b' } })
  sock.send({ type: 'rpc', id: 1, method: 'files.write', params: { workspaceId: ws, path: '/c.txt', content: 'c', ifMatch: '"99"' } })
  sock.send('{bad')
  sock.send({ type: 'ping' })
  await sleep(500)
  t.same(sock.messages.map(m => m.type), ['connected', 'event', 'subscribed', 'presence.members', 'event', 'rpc.error', 'error', 'pong'], JSON.stringify(sock.messages))
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
