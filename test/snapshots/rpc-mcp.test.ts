import t from 'tap'
import { build, createWorkspace, listen, registerUser } from '../helpers/app.js'
import { Ctx } from '../helpers/files.js'
import { connect } from '../helpers/ws.js'
import { connectMcp } from '../helpers/mcp.js'
import { expectStatus, type Workspace } from '../helpers/http.js'

/** Forks over WebSocket RPC (`workspaces.fork`) and MCP (`fork_workspace`): the REST route's result and errors. */

t.test('rpc workspaces.fork', async t => {
  const app = await build(t)
  const base = await listen(app)
  const user = await registerUser(app)
  const src = new Ctx(app, user, await createWorkspace(app, user, 'source'))
  await src.write('/a.txt', 'one') // 1
  await src.write('/a.txt', 'two') // 2
  const c = await connect(t, base, { token: user.token })

  const answer = await c.rpc('workspaces.fork', { workspaceId: src.ws, name: 'over rpc', revision: 1 })
  t.match(answer, { type: 'rpc.result', result: { name: 'over rpc', ownerId: user.id, role: 'owner', revision: 1, forkedFrom: { workspaceId: src.ws, revision: 1 } } })
  const id = (answer.result as Workspace).id
  const f = new Ctx(app, user, id)
  t.equal((await f.read('/a.txt')).content, 'one')
  t.match(expectStatus<Workspace>(await f.getUrl(`/v1/workspaces/${id}`), 200, 'get'), { forkedFrom: { workspaceId: src.ws, revision: 1 } })

  // idempotencyKey: the same fork again
  const once = await c.rpc('workspaces.fork', { workspaceId: src.ws, name: 'keyed', idempotencyKey: 'k1' })
  const again = await c.rpc('workspaces.fork', { workspaceId: src.ws, name: 'keyed', idempotencyKey: 'k1' })
  t.strictSame(again.result, once.result)

  t.match(await c.rpc('workspaces.fork', { workspaceId: src.ws }), { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } })
  t.match(await c.rpc('workspaces.fork', { workspaceId: src.ws, name: 'x', extra: 1 }), { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } })
  t.match(await c.rpc('workspaces.fork', { workspaceId: src.ws, name: 'x', revision: 3 }), { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } })
  const stranger = await registerUser(app)
  const s = await connect(t, base, { token: stranger.token })
  t.match(await s.rpc('workspaces.fork', { workspaceId: src.ws, name: 'x' }), { type: 'rpc.error', error: { code: 'WORKSPACE_NOT_FOUND' } })
})

t.test('mcp fork_workspace', async t => {
  const app = await build(t)
  const base = await listen(app)
  const user = await registerUser(app)
  const src = new Ctx(app, user, await createWorkspace(app, user, 'source'))
  await src.write('/src/a.ts', 'one') // 1
  await src.write('/src/a.ts', 'two') // 2
  const mcp = await connectMcp(t, base, user.token, src.ws)
  const { tools } = await mcp.client.listTools()
  t.match(tools.find(x => x.name === 'fork_workspace'), { annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false } })

  const r = await mcp.call('fork_workspace', { name: 'agent try', revision: 1 })
  t.notOk(r.isError, r.text)
  const id = /^workspace: ([0-9a-f-]{36})$/m.exec(r.text)?.[1] ?? ''
  t.match(r.text, new RegExp(`^Forked workspace ${src.ws} at revision 1 into ${id} \\("agent try"\\)\nworkspace: ${id}\nmcp: /v1/workspaces/${id}/mcp\nrevision: 1 \\(of the fork\\)$`))
  const f = new Ctx(app, user, id)
  t.equal((await f.read('/src/a.ts')).content, 'one')
  t.match(expectStatus<Workspace>(await f.getUrl(`/v1/workspaces/${id}`), 200, 'get'), { ownerId: user.id, forkedFrom: { workspaceId: src.ws, revision: 1 } })
  // the agent works in the fork through the fork's own endpoint; the source is untouched
  const inFork = await connectMcp(t, base, user.token, id)
  t.notOk((await inFork.call('write_file', { path: 'src/a.ts', content: 'fork' })).isError)
  t.equal((await src.read('/src/a.ts')).content, 'two')

  t.match((await mcp.call('fork_workspace', {})).text, /^VALIDATION_FAILED: /)
  t.match((await mcp.call('fork_workspace', { name: 'x', revision: 9 })).text, /^VALIDATION_FAILED: revision 9 is ahead/)
  // a viewer may fork (readers can)
  const viewer = await registerUser(app)
  expectStatus(await src.send('PUT', `/v1/workspaces/${src.ws}/members`, { email: viewer.email, role: 'viewer' }), 200, 'viewer')
  const asViewer = await connectMcp(t, base, viewer.token, src.ws)
  const v = await asViewer.call('fork_workspace', { name: 'viewer fork' })
  t.notOk(v.isError, v.text)
})
