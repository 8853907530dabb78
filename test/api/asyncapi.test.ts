import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { ClientMessage, RpcParams, ServerMessage } from '../../schemas/ws.js'
import { build, createWorkspace, listen, registerUser } from '../helpers/app.js'
import { expectStatus, request, type WriteResult } from '../helpers/http.js'
import { connect } from '../helpers/ws.js'

/**
 * The WebSocket protocol's AsyncAPI document (issue "Contract and observability", item 2): it is
 * valid AsyncAPI 3.0 (the specification's own JSON Schema), it names every message both ways, and
 * the frames a real session receives are what it says.
 */

const require = createRequire(import.meta.url)
const specPath = require.resolve('@asyncapi/specs/schemas/3.0.0-without-$id.json')

interface Doc {
  asyncapi: string
  channels: { ws: { address: string, messages: Record<string, { payload: unknown }> } }
  operations: Record<string, { action: string }>
}

t.test('/docs/asyncapi.json validates against the AsyncAPI 3.0.0 schema', async t => {
  const app = await build(t)
  const res = await app.inject({ url: '/docs/asyncapi.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = res.json<Doc>()
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats.default(ajv)
  const validate = ajv.compile(JSON.parse(readFileSync(specPath, 'utf8')) as object)
  t.ok(validate(doc), `valid AsyncAPI 3.0.0: ${JSON.stringify(validate.errors?.slice(0, 5))}`)
  t.equal(doc.asyncapi, '3.0.0')
  t.equal(doc.channels.ws.address, '/v1/ws')

  const clientTypes = ClientMessage.anyOf.map(s => String((s.properties.type as { const: string }).const))
  const serverTypes = ServerMessage.anyOf.map(s => String((s.properties.type as { const: string }).const))
  t.same(Object.keys(doc.channels.ws.messages).sort(), [...clientTypes.map(x => `client.${x}`), ...serverTypes.map(x => `server.${x}`)].sort(), 'every message, both ways')
  for (const type of clientTypes) t.equal(doc.operations[`receive.${type}`]?.action, 'receive', `the server receives ${type}`)
  for (const type of serverTypes) t.equal(doc.operations[`send.${type}`]?.action, 'send', `the server sends ${type}`)
  const rpc = doc.channels.ws.messages['client.rpc']?.payload as { oneOf: Array<{ properties: { method: { const: string } } }> }
  t.same(rpc.oneOf.map(m => m.properties.method.const).sort(), Object.keys(RpcParams).sort(), 'one rpc message per method, with its params')
})

t.test('every frame of a real session is a message the document describes', async t => {
  const app = await build(t)
  const base = await listen(app)
  const user = await registerUser(base)
  const other = await registerUser(base)
  const workspaceId = await createWorkspace(base, user)
  await request(base, 'PUT', `/v1/workspaces/${workspaceId}/members`, { token: user.token, payload: { email: other.email, role: 'editor' } })
  const ajv = new Ajv({ strict: false })
  addFormats.default(ajv)
  const isServerMessage = ajv.compile(JSON.parse(JSON.stringify(ServerMessage)) as object)

  const a = await connect(t, base, { token: user.token })
  const b = await connect(t, base, { token: other.token })
  await a.join(workspaceId)
  await b.join(workspaceId)
  expectStatus<WriteResult>(await request(base, 'PUT', `/v1/workspaces/${workspaceId}/files/a.txt`, { token: user.token, payload: { content: 'a' } }), 201, 'PUT')
  await a.untilRevision(workspaceId, 1)
  b.send({ type: 'broadcast', channel: `workspace:${workspaceId}`, data: { cursor: 3 } })
  await a.next(m => m.type === 'broadcast', 'broadcast')
  b.send({ type: 'presence.set', channel: `workspace:${workspaceId}`, state: { file: '/a.txt' } })
  await a.next(m => m.type === 'presence', 'presence')
  await a.rpc('files.read', { workspaceId, path: '/a.txt' })
  await a.rpc('files.read', { workspaceId, path: '/missing.txt' })
  await a.request({ type: 'ping' }, ['pong'])
  a.send({ type: 'nonsense' })
  await a.next(m => m.type === 'error', 'error')
  await a.request({ type: 'unsubscribe', channel: `workspace:${workspaceId}` }, ['unsubscribed'])
  await a.subscribe(workspaceId, 0)

  const seen = new Set<string>()
  for (const frame of a.messages) {
    seen.add(frame.type)
    t.ok(isServerMessage(frame), `${frame.type}: ${JSON.stringify(isServerMessage.errors?.slice(0, 3))}`)
  }
  t.same([...seen].sort(), ['broadcast', 'connected', 'error', 'event', 'pong', 'presence', 'presence.members', 'rpc.error', 'rpc.result', 'subscribed', 'unsubscribed'], 'every kind of server message was seen')
})
