import t from 'tap'
import { listen, registerUser, TEST_SECRET } from '../helpers/app.js'
import { isError, request, type Method, type Workspace } from '../helpers/http.js'
import { setup } from '../helpers/files.js'
import { connect } from '../helpers/ws.js'
import { accessClaims, signJwt } from '../helpers/jwt.js'
import { UUID_PATTERN } from '../../schemas/common.js'
import { isUuid } from '../../src/core/validation.js'

/**
 * Every id has one spelling: lower-case hex 8-4-4-4-12 (docs/api.md, Conventions). Any other
 * spelling of a real id (upper case, `urn:uuid:`) is 400 VALIDATION_FAILED on every route and in
 * every body or header field, and changes nothing: an id spelt two ways would be two cache and
 * fan-out keys for one workspace (the "Hardening" issue, findings 3 and 12).
 */

const upper = (id: string): string => id.toUpperCase()
const urn = (id: string): string => `urn:uuid:${id}`

t.test('isUuid and the schema agree: one pattern, lower case only', async t => {
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e'
  t.equal(isUuid(id), true)
  t.equal(new RegExp(UUID_PATTERN).test(id), true)
  for (const bad of [upper(id), urn(id), `{${id}}`, id.replace(/-/g, ''), ` ${id}`, `${id}\n`, id.slice(0, 35), 'Ｆ'.repeat(36)]) {
    t.equal(isUuid(bad), false, `isUuid refuses ${JSON.stringify(bad)}`)
    t.equal(new RegExp(UUID_PATTERN, 'u').test(bad), false, `the pattern refuses ${JSON.stringify(bad)}`)
  }
})

t.test('a workspace id in any other spelling is 400 on every route, and nothing changes', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const member = await registerUser(c.app)
  const base = `/v1/workspaces/${c.ws}`
  const put = await c.send('PUT', `${base}/members`, { email: member.email, role: 'editor' })
  t.equal(put.statusCode, 200, put.body)
  const before = await c.revision()

  const routes: Array<[Method, (ws: string) => string, unknown?]> = [
    ['GET', ws => `/v1/workspaces/${ws}`],
    ['DELETE', ws => `/v1/workspaces/${ws}`],
    ['GET', ws => `/v1/workspaces/${ws}/members`],
    ['PUT', ws => `/v1/workspaces/${ws}/members`, { email: member.email, role: 'viewer' }],
    ['DELETE', ws => `/v1/workspaces/${ws}/members/${member.id}`],
    ['GET', ws => `/v1/workspaces/${ws}/files/a.txt`],
    ['GET', ws => `/v1/workspaces/${ws}/files/a.txt?format=raw`],
    ['GET', ws => `/v1/workspaces/${ws}/files`],
    ['PUT', ws => `/v1/workspaces/${ws}/files/a.txt`, { content: 'changed' }],
    ['DELETE', ws => `/v1/workspaces/${ws}/files/a.txt`],
    ['POST', ws => `/v1/workspaces/${ws}/operations`, { type: 'delete', path: '/a.txt' }],
    ['POST', ws => `/v1/workspaces/${ws}/operations/batch`, { operations: [{ type: 'delete', path: '/a.txt' }] }],
    ['POST', ws => `/v1/workspaces/${ws}/revert`, { toRevision: 0 }],
    ['GET', ws => `/v1/workspaces/${ws}/history/a.txt`],
    ['GET', ws => `/v1/workspaces/${ws}/tree`],
    ['GET', ws => `/v1/workspaces/${ws}/changes`]
  ]
  for (const spell of [upper, urn]) {
    for (const [method, url, payload] of routes) {
      const res = await c.send(method as 'GET', url(spell(c.ws)), payload)
      isError(t, res, 400, 'VALIDATION_FAILED', `${method} ${url(spell('<id>'))}`)
    }
  }
  await c.unchanged(t, before)
  t.equal((await c.read('/a.txt')).content, 'a', 'the file is as it was')
  const members = await c.send('GET', `${base}/members`)
  t.equal(members.json<{ items: Array<{ userId: string, role: string }> }>().items.find(m => m.userId === member.id)?.role, 'editor', 'the member is as they were')
})

t.test('a member user id in another spelling is 400 and removes nobody', async t => {
  const c = await setup(t)
  const member = await registerUser(c.app)
  t.equal((await c.send('PUT', `/v1/workspaces/${c.ws}/members`, { email: member.email, role: 'editor' })).statusCode, 200)
  for (const spelt of [upper(member.id), urn(member.id)]) {
    isError(t, await c.send('DELETE', `/v1/workspaces/${c.ws}/members/${spelt}`), 400, 'VALIDATION_FAILED', spelt)
  }
  t.equal((await request(c.app, 'GET', `/v1/workspaces/${c.ws}`, { token: member.token })).statusCode, 200, 'still a member')
})

t.test('a removed member cannot keep reading through another spelling of the id', async t => {
  const c = await setup(t)
  const member = await registerUser(c.app)
  t.equal((await c.send('PUT', `/v1/workspaces/${c.ws}/members`, { email: member.email, role: 'viewer' })).statusCode, 200)
  await c.write('/secret.txt', 'v1')
  const read = async (ws: string): Promise<ReturnType<typeof request>> =>
    await request(c.app, 'GET', `/v1/workspaces/${ws}/files/secret.txt`, { token: member.token })
  t.equal((await read(c.ws)).statusCode, 200, 'the member reads')
  isError(t, await read(upper(c.ws)), 400, 'VALIDATION_FAILED', 'no second cache key to warm')
  t.equal((await c.send('DELETE', `/v1/workspaces/${c.ws}/members/${member.id}`)).statusCode, 204)
  isError(t, await read(c.ws), 404, 'WORKSPACE_NOT_FOUND', 'removed: the canonical id')
  isError(t, await read(upper(c.ws)), 400, 'VALIDATION_FAILED', 'removed: the upper-case id')
})

t.test('a token whose sub is upper case is that user (one cache key), and loses access when removed', async t => {
  const c = await setup(t)
  const member = await registerUser(c.app)
  t.equal((await c.send('PUT', `/v1/workspaces/${c.ws}/members`, { email: member.email, role: 'viewer' })).statusCode, 200)
  await c.write('/secret.txt', 'v1')
  const token = signJwt(accessClaims(upper(member.id), upper(member.sessionId)), { alg: 'HS256', secret: TEST_SECRET })
  const read = async (): Promise<Awaited<ReturnType<typeof request>>> =>
    await request(c.app, 'GET', `/v1/workspaces/${c.ws}/files/secret.txt`, { token })
  t.equal((await read()).statusCode, 200, 'the member reads (and warms the access cache)')
  t.equal((await c.send('DELETE', `/v1/workspaces/${c.ws}/members/${member.id}`)).statusCode, 204)
  isError(t, await read(), 404, 'WORKSPACE_NOT_FOUND', 'removed: the same token reads nothing')
})

t.test('session ids in headers and bodies: one spelling', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const sid = c.user.sessionId
  const before = await c.revision()
  for (const spelt of [upper(sid), urn(sid)]) {
    isError(t, await c.put('/a.txt', { content: 'b' }, { 'x-session-id': spelt }), 400, 'VALIDATION_FAILED', `X-Session-Id ${spelt}`)
    isError(t, await c.op({ type: 'update', path: '/a.txt', content: 'b', sessionId: spelt }), 400, 'VALIDATION_FAILED', `op.sessionId ${spelt}`)
    isError(t, await c.batch([{ type: 'update', path: '/a.txt', content: 'b', sessionId: spelt }]), 400, 'VALIDATION_FAILED', `batch sessionId ${spelt}`)
    isError(t, await c.send('POST', `/v1/workspaces/${c.ws}/revert`, { sessionId: spelt }), 400, 'VALIDATION_FAILED', `revert.sessionId ${spelt}`)
    isError(t, await c.getUrl(`/v1/sessions/${spelt}/activity`), 400, 'VALIDATION_FAILED', `/sessions/${spelt}/activity`)
    isError(t, await c.getUrl(`/v1/sessions/${spelt}/log.md`), 400, 'VALIDATION_FAILED', `/sessions/${spelt}/log.md`)
  }
  await c.unchanged(t, before)
  t.equal((await c.read('/a.txt')).content, 'a')
  // The canonical spelling still works everywhere.
  t.equal((await c.op({ type: 'update', path: '/a.txt', content: 'b', sessionId: sid })).statusCode, 200)
  t.equal((await c.getUrl(`/v1/sessions/${sid}/activity`)).statusCode, 200)
})

t.test('a WebSocket upgrade with X-Session-Id in another spelling is refused with 400, not given that session', async t => {
  const c = await setup(t)
  const base = await listen(c.app)
  for (const spelt of [upper(c.user.sessionId), urn(c.user.sessionId)]) {
    await t.rejects(connect(t, base, { headers: { authorization: `Bearer ${c.user.token}`, 'x-session-id': spelt } }), /unexpected response 400/, spelt)
  }
  t.equal(c.app.websocketServer.clients.size, 0, 'no socket was opened')
})

t.test('the OpenAPI document: every id a client sends has the one pattern', async t => {
  const c = await setup(t)
  const doc = (await request(c.app, 'GET', '/docs/json')).json<{ paths: Record<string, Record<string, Operation>> }>()
  interface Schema { pattern?: string, properties?: Record<string, Schema>, items?: Schema }
  interface Operation {
    parameters?: Array<{ name: string, in: string, schema: Schema }>
    requestBody?: { content: Record<string, { schema: Schema }> }
  }
  const ids: string[] = []
  const check = (where: string, name: string, schema: Schema): void => {
    if (/(^|[-_])(id|sid)$|Id$/.test(name)) {
      ids.push(`${where} ${name}`)
      t.equal(schema.pattern, UUID_PATTERN, `${where} ${name}`)
    }
    for (const [k, v] of Object.entries(schema.properties ?? {})) check(where, k, v)
    if (schema.items !== undefined) check(where, `${name}[]`, schema.items)
  }
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      for (const p of op.parameters ?? []) check(`${method} ${path} (${p.in})`, p.name, p.schema)
      for (const body of Object.values(op.requestBody?.content ?? {})) check(`${method} ${path} (body)`, '', body.schema)
    }
  }
  t.ok(ids.some(s => s.includes('x-session-id')) && ids.some(s => s.includes('sessionId')) && ids.some(s => s.includes('userId')), `found: ${ids.length}`)
  t.ok((await request(c.app, 'GET', `/v1/workspaces/${c.ws}`, { token: c.user.token })).json<Workspace>().id === c.ws)
})
