import t from 'tap'
import { listen, registerUser, sleep } from '../helpers/app.js'
import { setup } from '../helpers/files.js'
import { isError, request, type ActivityPage } from '../helpers/http.js'
import { connectMcp } from '../helpers/mcp.js'
import { connect, isEvent } from '../helpers/ws.js'

/**
 * Who may use the MCP endpoint and what it leaves behind: Bearer auth and workspace roles as on
 * the REST routes (viewers get the reading tools; a workspace the caller cannot see is 404), the
 * MCP session as an activity-log session (log.md shows what the agent did, revert undoes it),
 * and a tool's write reaching a WebSocket subscriber.
 */

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } }
}
const MCP_HEADERS = { accept: 'application/json, text/event-stream' }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test('auth and membership as REST: 401 without a token, 404 for a workspace the caller cannot see, 405 for GET and DELETE', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  const url = `/v1/workspaces/${ctx.ws}/mcp`
  isError(t, await request(base, 'POST', url, { payload: INITIALIZE, headers: MCP_HEADERS }), 401, 'UNAUTHENTICATED', 'no token')
  isError(t, await request(base, 'POST', url, { payload: INITIALIZE, headers: MCP_HEADERS, token: 'nope' }), 401, 'UNAUTHENTICATED', 'a bad token')
  const stranger = await registerUser(ctx.app)
  isError(t, await request(base, 'POST', url, { payload: INITIALIZE, headers: MCP_HEADERS, token: stranger.token }), 404, 'WORKSPACE_NOT_FOUND', 'not a member')
  isError(t, await request(base, 'POST', '/v1/workspaces/00000000-0000-4000-8000-000000000000/mcp', { payload: INITIALIZE, headers: MCP_HEADERS, token: ctx.user.token }), 404, 'WORKSPACE_NOT_FOUND', 'no such workspace')
  isError(t, await request(base, 'POST', '/v1/workspaces/NOT-A-UUID/mcp', { payload: INITIALIZE, headers: MCP_HEADERS, token: ctx.user.token }), 400, 'VALIDATION_FAILED', 'a malformed id')
  await t.rejects(connectMcp(t, base, stranger.token, ctx.ws), /404|WORKSPACE_NOT_FOUND/, 'the SDK client sees the 404')
  for (const method of ['GET', 'DELETE'] as const) {
    const res = await request(base, method, url, { token: ctx.user.token, headers: { accept: 'text/event-stream' } })
    isError(t, res, 405, 'METHOD_NOT_ALLOWED', method)
    t.equal(res.headers.allow, 'POST', `${method}: Allow: POST`)
    isError(t, await request(base, method, url, { token: stranger.token }), 404, 'WORKSPACE_NOT_FOUND', `${method} by a stranger`)
  }
  const ok = await request(base, 'POST', url, { payload: INITIALIZE, headers: MCP_HEADERS, token: ctx.user.token })
  t.equal(ok.statusCode, 200, ok.body)
  t.match(ok.json(), { jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'workbench' }, capabilities: { tools: {} } } })
  t.match(ok.headers['mcp-session-id'], UUID, 'initialize starts a session')
  t.not(ok.headers['mcp-session-id'], ctx.user.sessionId, 'a new one, not the login\'s')
  const note = await request(base, 'POST', url, { payload: { jsonrpc: '2.0', method: 'notifications/initialized' }, headers: MCP_HEADERS, token: ctx.user.token })
  t.same([note.statusCode, note.body], [202, ''], 'a notification: 202 with no body')
  const noAccept = await request(base, 'POST', url, { payload: INITIALIZE, token: ctx.user.token })
  t.equal(noAccept.statusCode, 406, 'the transport\'s own answer when Accept does not list both types')
  t.match(noAccept.json(), { jsonrpc: '2.0', error: { code: -32000 } })
  isError(t, await request(base, 'POST', url, { payload: INITIALIZE, headers: { ...MCP_HEADERS, 'mcp-session-id': 'nope' }, token: ctx.user.token }), 400, 'VALIDATION_FAILED', 'a malformed Mcp-Session-Id')
  const theirs = String(ok.headers['mcp-session-id'])
  isError(t, await request(base, 'POST', url, { payload: { jsonrpc: '2.0', id: 2, method: 'tools/list' }, headers: { ...MCP_HEADERS, 'mcp-session-id': theirs }, token: (await registerUser(ctx.app)).token }),
    404, 'WORKSPACE_NOT_FOUND', 'a stranger with someone\'s session id still cannot see the workspace')
  const member = await registerUser(ctx.app)
  await ctx.send('PUT', `/v1/workspaces/${ctx.ws}/members`, { email: member.email, role: 'editor' })
  isError(t, await request(base, 'POST', url, { payload: { jsonrpc: '2.0', id: 2, method: 'tools/list' }, headers: { ...MCP_HEADERS, 'mcp-session-id': theirs }, token: member.token }),
    403, 'FORBIDDEN', 'another user\'s MCP session is refused, as X-Session-Id is')
})

t.test('a viewer is offered the reading tools; a mutating tool called anyway is FORBIDDEN and logged', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  await ctx.write('/a.ts', 'A')
  const viewer = await registerUser(ctx.app)
  await ctx.send('PUT', `/v1/workspaces/${ctx.ws}/members`, { email: viewer.email, role: 'viewer' })
  const mcp = await connectMcp(t, base, viewer.token, ctx.ws)
  const { tools } = await mcp.client.listTools()
  t.ok(tools.length > 5 && tools.every(x => x.annotations?.readOnlyHint === true), `read-only tools only: ${tools.map(x => x.name).join(', ')}`)
  t.equal((await mcp.call('read_text_file', { path: 'a.ts' })).text, 'A')
  for (const [name, args] of [['write_file', { path: 'b.ts', content: 'B' }], ['delete', { path: 'a.ts' }], ['revert_session', {}], ['create_directory', { path: 'd' }]] as const) {
    const r = await mcp.call(name, args)
    t.ok(r.isError, name)
    t.match(r.text, /^FORBIDDEN: this needs the editor role; you are viewer/, name)
  }
  await ctx.unchanged(t, 1)
  const sid = mcp.transport.sessionId ?? ''
  // Failures are recorded after their rollback, on their own: wait for all four.
  let page = (await request(base, 'GET', `/v1/sessions/${sid}/activity`, { token: viewer.token })).json<ActivityPage>()
  for (let i = 0; i < 50 && page.items.length < 4; i++) {
    await sleep(100)
    page = (await request(base, 'GET', `/v1/sessions/${sid}/activity`, { token: viewer.token })).json<ActivityPage>()
  }
  t.match(page.items.map(e => [e.type, e.status, e.code]), [['file.write', 403, 'FORBIDDEN'], ['file.delete', 403, 'FORBIDDEN'], ['revert', 403, 'FORBIDDEN'], ['operation', 403, 'FORBIDDEN']],
    'the refusals are in the viewer\'s MCP session, as REST\'s would be')
})

t.test('an MCP session is an activity-log session: log.md shows what the agent did, revert undoes it; the write reaches a WebSocket subscriber', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  const sock = await connect(t, base, { token: ctx.user.token })
  await sock.join(ctx.ws, 0)
  const mcp = await connectMcp(t, base, ctx.user.token, ctx.ws)
  const sid = mcp.transport.sessionId ?? ''
  t.match(sid, UUID)
  const w = await mcp.call('write_file', { path: 'src/agent.ts', content: 'by the agent' })
  const event = await sock.next(m => isEvent(m) && m.revision === 1, 'the write\'s event')
  t.match(event, { type: 'event', event: 'file.changed', revision: 1, data: { op: 'create', path: '/src/agent.ts', sessionId: sid } })
  t.equal(w.structured?.revision, 1)
  await mcp.call('move_file', { source: 'src/agent.ts', destination: 'lib/agent.ts' })
  const bad = await mcp.call('write_file', { path: 'x', content: 'x', ifMatch: '"99"' })
  t.match(bad.text, /^PRECONDITION_FAILED: /)
  const invalid = await mcp.call('write_file', { path: '../x', content: 'x' })
  t.match(invalid.text, /^INVALID_PATH: /)
  await sock.untilRevision(ctx.ws, 2)

  // A failure's entry is recorded after its answer: read until all four are there (at most 5 s).
  let entries: ActivityPage['items'] = []
  for (const until = Date.now() + 5_000; entries.length < 4 && Date.now() < until; await sleep(50)) {
    entries = (await ctx.getUrl(`/v1/sessions/${sid}/activity`)).json<ActivityPage>().items
  }
  t.match(entries.map(e => [e.type, e.op, e.path, e.status, e.code]), [
    ['file.write', 'write', '/src/agent.ts', 201, null],
    ['operation', 'move', '/src/agent.ts', 200, null],
    ['file.write', 'write', '/x', 412, 'PRECONDITION_FAILED'],
    ['file.write', null, '../x', 400, 'INVALID_PATH']
  ], 'the same entries REST and RPC write')
  await new Promise(resolve => setTimeout(resolve, 100))
  const md = await ctx.getUrl(`/v1/sessions/${sid}/log.md`)
  t.equal(md.statusCode, 200)
  t.match(md.body, /## .* - Backend Activity\n\n### Type: file\.write[^]*\/src\/agent\.ts[^]*## .* - Backend Activity\n\n### Type: operation\n### Operation: move/)

  await ctx.write('/mine.ts', 'REST, in the login session')
  const reverted = await ctx.send('POST', `/v1/workspaces/${ctx.ws}/revert`, { sessionId: sid })
  t.equal(reverted.statusCode, 200, reverted.body)
  t.same(await ctx.allPaths(), ['/mine.ts'], 'reverting the MCP session undoes the agent\'s work only')
})

t.test('X-Session-Id names the session, as on every route, and comes back as Mcp-Session-Id', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  const chosen = '0f8fad5b-d9cb-469f-a165-70867728950e'
  const mcp = await connectMcp(t, base, ctx.user.token, ctx.ws, { 'x-session-id': chosen })
  t.equal(mcp.transport.sessionId, chosen)
  await mcp.call('write_file', { path: 'a', content: '' })
  t.equal((await ctx.changes()).changes[0]?.sessionId, chosen)
  const other = await registerUser(ctx.app)
  await ctx.send('PUT', `/v1/workspaces/${ctx.ws}/members`, { email: other.email, role: 'editor' })
  await t.rejects(connectMcp(t, base, other.token, ctx.ws, { 'x-session-id': chosen }), /403|FORBIDDEN/, 'another user\'s session is refused')
})

t.test('calls after the first in a JSON-RPC batch are charged to the rate limit', async t => {
  const ctx = await setup(t, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: '5' })
  const base = await listen(ctx.app)
  const calls = Array.from({ length: 8 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'list_allowed_directories', arguments: {} } }))
  const res = await request(base, 'POST', `/v1/workspaces/${ctx.ws}/mcp`, {
    payload: calls, headers: { ...MCP_HEADERS, 'mcp-protocol-version': '2025-06-18' }, token: ctx.user.token
  })
  t.equal(res.statusCode, 200, res.body)
  const answers = res.json<Array<{ id: number, result: { isError?: boolean, content: Array<{ text: string }> } }>>().sort((a, b) => a.id - b.id)
  const limited = answers.filter(a => a.result.isError === true)
  t.ok(limited.length >= 3, `past the budget: ${limited.length} of 8 refused`)
  for (const a of limited) t.match(a.result.content[0]?.text, /^RATE_LIMITED: /)
})
