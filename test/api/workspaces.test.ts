import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createWorkspace, registerUser, type TestUser } from '../helpers/app.js'
import { isError, JSON_TYPE, request, type Member, type Res, type Workspace } from '../helpers/http.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface Api {
  list: (u: TestUser) => Promise<Workspace[]>
  get: (u: TestUser, id: string) => Promise<Res>
  del: (u: TestUser, id: string) => Promise<Res>
  members: (u: TestUser, id: string) => Promise<Res>
  memberList: (owner: TestUser, id: string) => Promise<Member[]>
  put: (u: TestUser, id: string, payload: unknown) => Promise<Res>
  remove: (u: TestUser, id: string, userId: string) => Promise<Res>
}

function api (t: Test, app: FastifyInstance): Api {
  return {
    async list (u) {
      const res = await request(app, 'GET', '/v1/workspaces', { token: u.token })
      t.equal(res.statusCode, 200, res.body)
      return res.json<{ items: Workspace[] }>().items
    },
    get: async (u, id) => await request(app, 'GET', `/v1/workspaces/${id}`, { token: u.token }),
    del: async (u, id) => await request(app, 'DELETE', `/v1/workspaces/${id}`, { token: u.token }),
    members: async (u, id) => await request(app, 'GET', `/v1/workspaces/${id}/members`, { token: u.token }),
    async memberList (owner, id) {
      const res = await request(app, 'GET', `/v1/workspaces/${id}/members`, { token: owner.token })
      t.equal(res.statusCode, 200, res.body)
      return res.json<{ items: Member[] }>().items
    },
    put: async (u, id, payload) => await request(app, 'PUT', `/v1/workspaces/${id}/members`, { token: u.token, payload }),
    remove: async (u, id, userId) => await request(app, 'DELETE', `/v1/workspaces/${id}/members/${userId}`, { token: u.token })
  }
}

const roleOf = (list: Member[], userId: string): string | undefined => list.find(m => m.userId === userId)?.role

t.test('workspaces', async t => {
  const app = await build(t)
  const alice = await registerUser(app)
  const bob = await registerUser(app)
  const a = api(t, app)

  t.test('create: 201 with role owner and revision 0', async t => {
    const before = Date.now()
    const res = await app.inject({ method: 'POST', url: '/v1/workspaces', headers: alice.auth, payload: { name: 'My project' } })
    t.equal(res.statusCode, 201, res.body)
    t.equal(res.headers['content-type'], JSON_TYPE)
    const ws = res.json<Workspace>()
    t.strictSame(Object.keys(ws).sort(), ['createdAt', 'forkedFrom', 'id', 'name', 'ownerId', 'revision', 'role'])
    t.equal(ws.forkedFrom, null, 'a workspace made new was forked from nothing')
    t.match(ws.id, UUID)
    t.equal(ws.name, 'My project')
    t.equal(ws.ownerId, alice.id)
    t.equal(ws.role, 'owner')
    t.equal(ws.revision, 0)
    t.match(ws.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'ISO-8601 UTC')
    t.ok(Math.abs(Date.parse(ws.createdAt) - before) < 60_000, 'createdAt is now')

    const got = await a.get(alice, ws.id)
    t.equal(got.statusCode, 200)
    t.strictSame(got.json(), ws, 'GET answers what POST did')
  })

  t.test('create: invalid bodies are 400 and create nothing', async t => {
    const before = await a.list(alice)
    for (const payload of [{}, { name: '' }, { name: 'x'.repeat(201) }, { name: 5 }, { name: 'ok', extra: true }]) {
      const res = await app.inject({ method: 'POST', url: '/v1/workspaces', headers: alice.auth, payload })
      isError(t, res, 400, 'VALIDATION_FAILED')
    }
    isError(t, await app.inject({ method: 'POST', url: '/v1/workspaces', payload: { name: 'anon' } }), 401, 'UNAUTHENTICATED')
    t.strictSame(await a.list(alice), before)
    const max = await app.inject({ method: 'POST', url: '/v1/workspaces', headers: bob.auth, payload: { name: 'y'.repeat(200) } })
    t.equal(max.statusCode, 201, '200 chars is allowed')
  })

  t.test('list: only the caller\'s workspaces', async t => {
    const carol = await registerUser(app)
    const dave = await registerUser(app)
    t.strictSame(await a.list(carol), [], 'a new user has none')
    const c1 = await createWorkspace(app, carol, 'c1')
    const c2 = await createWorkspace(app, carol, 'c2')
    const d1 = await createWorkspace(app, dave, 'd1')
    const carols = await a.list(carol)
    t.strictSame(carols.map(w => w.id), [c1, c2], 'oldest first')
    t.ok(carols.every(w => w.role === 'owner' && w.ownerId === carol.id && w.revision === 0))
    t.strictSame((await a.list(dave)).map(w => w.id), [d1])
    isError(t, await app.inject({ url: '/v1/workspaces' }), 401, 'UNAUTHENTICATED')
  })

  t.test('get: others\' and unknown workspaces are 404; a bad id is 400', async t => {
    const ws = await createWorkspace(app, alice, 'private')
    const others = isError(t, await a.get(bob, ws), 404, 'WORKSPACE_NOT_FOUND')
    const random = isError(t, await a.get(bob, randomUUID()), 404, 'WORKSPACE_NOT_FOUND')
    t.equal(others.error, random.error)
    t.notMatch(others.message, /owner|member|forbidden/i, 'no hint that it exists')
    const bad = isError(t, await a.get(alice, 'not-a-uuid'), 400, 'VALIDATION_FAILED')
    t.match(bad.details, { errors: [{ keyword: 'pattern', path: '/id' }] })
    isError(t, await app.inject({ url: `/v1/workspaces/${ws}` }), 401, 'UNAUTHENTICATED')
  })

  t.test('delete: owner 204 then 404; editor 403; non-member 404', async t => {
    const ws = await createWorkspace(app, alice, 'doomed')
    const editor = await registerUser(app)
    const viewer = await registerUser(app)
    t.equal((await a.put(alice, ws, { email: editor.email, role: 'editor' })).statusCode, 200)
    t.equal((await a.put(alice, ws, { email: viewer.email, role: 'viewer' })).statusCode, 200)

    isError(t, await a.del(editor, ws), 403, 'FORBIDDEN')
    isError(t, await a.del(viewer, ws), 403, 'FORBIDDEN')
    isError(t, await a.del(bob, ws), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await a.del(alice, 'not-a-uuid'), 400, 'VALIDATION_FAILED')
    isError(t, await a.del(alice, randomUUID()), 404, 'WORKSPACE_NOT_FOUND')
    const still = await a.get(alice, ws)
    t.equal(still.statusCode, 200, 'rejected deletes changed nothing')
    t.equal((await a.get(editor, ws)).json<Workspace>().role, 'editor')
    t.equal((await a.memberList(alice, ws)).length, 3)
    t.equal((await request(app, 'PUT', `/v1/workspaces/${ws}/files/a.txt`, { token: alice.token, payload: { content: 'history' } })).statusCode, 201)
    t.equal((await request(app, 'PUT', `/v1/workspaces/${ws}/files/a.txt`, { token: alice.token, payload: { content: 'more history' } })).statusCode, 200)
    const rows = async (table: 'files' | 'changes' | 'change_entries'): Promise<number> =>
      Number((await app.db.selectFrom(table).select(eb => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', ws).executeTakeFirstOrThrow()).n)

    t.same([await rows('files'), await rows('changes'), await rows('change_entries')], [1, 2, 2], 'a file, two changes, their entries')

    const res = await a.del(alice, ws)
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    t.same([await rows('files'), await rows('changes'), await rows('change_entries')], [0, 0, 0], 'its files, changes and their entries went with it')
    isError(t, await a.get(alice, ws), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await a.get(editor, ws), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await a.del(alice, ws), 404, 'WORKSPACE_NOT_FOUND')
    t.notOk((await a.list(alice)).some(w => w.id === ws))
    t.notOk((await a.list(editor)).some(w => w.id === ws), 'gone for members too')
  })

  t.test('members: PUT adds, changes roles, and the member sees the workspace', async t => {
    const ws = await createWorkspace(app, alice, 'shared')
    const erin = await registerUser(app)
    const frank = await registerUser(app)

    const added = await a.put(alice, ws, { email: erin.email, role: 'editor' })
    t.equal(added.statusCode, 200, added.body)
    t.equal(added.headers['content-type'], JSON_TYPE)
    t.strictSame(added.json(), { userId: erin.id, email: erin.email, role: 'editor' })

    const byCase = await a.put(alice, ws, { email: frank.email.toUpperCase(), role: 'viewer' })
    t.equal(byCase.statusCode, 200, byCase.body)
    t.strictSame(byCase.json(), { userId: frank.id, email: frank.email, role: 'viewer' }, 'email matched case-insensitively')

    const erinsView = await a.list(erin)
    t.equal(erinsView.length, 1)
    t.match(erinsView[0], { id: ws, name: 'shared', ownerId: alice.id, role: 'editor', revision: 0 })
    t.match((await a.get(frank, ws)).json(), { id: ws, role: 'viewer', ownerId: alice.id })

    const members = await a.memberList(alice, ws)
    t.strictSame(members.map(m => m.userId).sort(), [alice.id, erin.id, frank.id].sort())
    t.equal(roleOf(members, alice.id), 'owner')
    t.strictSame(members.find(m => m.userId === erin.id), { userId: erin.id, email: erin.email, role: 'editor' })
    t.strictSame(members.map(m => m.email), [...members.map(m => m.email)].sort(), 'sorted by email')

    // any member may read the member list
    const asViewer = await a.members(frank, ws)
    t.equal(asViewer.statusCode, 200)
    t.strictSame(asViewer.json<{ items: Member[] }>().items, members)
    isError(t, await a.members(bob, ws), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await a.members(alice, 'nope'), 400, 'VALIDATION_FAILED')

    // role change, both ways; repeating is idempotent
    const demoted = await a.put(alice, ws, { email: erin.email, role: 'viewer' })
    t.equal(demoted.statusCode, 200)
    t.strictSame(demoted.json(), { userId: erin.id, email: erin.email, role: 'viewer' })
    t.equal((await a.list(erin))[0]?.role, 'viewer')
    t.equal(roleOf(await a.memberList(alice, ws), erin.id), 'viewer')
    t.equal((await a.put(alice, ws, { email: erin.email, role: 'viewer' })).statusCode, 200)
    t.equal((await a.put(alice, ws, { email: erin.email, role: 'editor' })).statusCode, 200)
    t.equal((await a.get(erin, ws)).json<Workspace>().role, 'editor')
    t.equal((await a.memberList(alice, ws)).length, 3, 'no duplicate membership')
  })

  t.test('members: rejected PUTs change nothing', async t => {
    const ws = await createWorkspace(app, alice, 'guarded')
    const gina = await registerUser(app)
    const hank = await registerUser(app)
    t.equal((await a.put(alice, ws, { email: gina.email, role: 'editor' })).statusCode, 200)
    const before = await a.memberList(alice, ws)

    const unknown = isError(t, await a.put(alice, ws, { email: 'nobody-here@example.com', role: 'viewer' }), 404, 'NOT_FOUND')
    t.match(unknown.message, /nobody-here@example\.com/)
    isError(t, await a.put(alice, ws, { email: gina.email, role: 'owner' }), 400, 'VALIDATION_FAILED')
    isError(t, await a.put(alice, ws, { email: hank.email, role: 'admin' }), 400, 'VALIDATION_FAILED')
    isError(t, await a.put(alice, ws, { email: 'not-an-email', role: 'viewer' }), 400, 'VALIDATION_FAILED')
    isError(t, await a.put(alice, ws, { email: hank.email }), 400, 'VALIDATION_FAILED')
    isError(t, await a.put(alice, ws, { email: hank.email, role: 'viewer', extra: 1 }), 400, 'VALIDATION_FAILED')
    // the owner cannot demote themself
    isError(t, await a.put(alice, ws, { email: alice.email, role: 'viewer' }), 400, 'VALIDATION_FAILED')
    // non-owners: an editor is 403, a stranger 404
    isError(t, await a.put(gina, ws, { email: hank.email, role: 'viewer' }), 403, 'FORBIDDEN')
    isError(t, await a.put(gina, ws, { email: gina.email, role: 'viewer' }), 403, 'FORBIDDEN')
    isError(t, await a.put(hank, ws, { email: hank.email, role: 'editor' }), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await a.put(alice, randomUUID(), { email: hank.email, role: 'editor' }), 404, 'WORKSPACE_NOT_FOUND')

    t.strictSame(await a.memberList(alice, ws), before, 'members unchanged')
    t.equal((await a.get(alice, ws)).json<Workspace>().role, 'owner')
    t.equal((await a.get(gina, ws)).json<Workspace>().role, 'editor')
    isError(t, await a.get(hank, ws), 404, 'WORKSPACE_NOT_FOUND')
    t.strictSame(await a.list(hank), [])

    // a viewer is 403 as well
    t.equal((await a.put(alice, ws, { email: gina.email, role: 'viewer' })).statusCode, 200)
    isError(t, await a.put(gina, ws, { email: hank.email, role: 'viewer' }), 403, 'FORBIDDEN')
    t.strictSame(await a.list(hank), [])
  })

  t.test('members: DELETE', async t => {
    const ws = await createWorkspace(app, alice, 'team')
    const ivy = await registerUser(app)
    const jack = await registerUser(app)
    t.equal((await a.put(alice, ws, { email: ivy.email, role: 'editor' })).statusCode, 200)
    t.equal((await a.put(alice, ws, { email: jack.email, role: 'viewer' })).statusCode, 200)
    const before = await a.memberList(alice, ws)

    // rejected: nothing changes
    isError(t, await a.remove(alice, ws, bob.id), 404, 'NOT_FOUND')
    isError(t, await a.remove(alice, ws, randomUUID()), 404, 'NOT_FOUND')
    isError(t, await a.remove(alice, ws, alice.id), 400, 'VALIDATION_FAILED')
    isError(t, await a.remove(alice, ws, 'not-a-uuid'), 400, 'VALIDATION_FAILED')
    isError(t, await a.remove(ivy, ws, jack.id), 403, 'FORBIDDEN')
    isError(t, await a.remove(ivy, ws, alice.id), 403, 'FORBIDDEN')
    isError(t, await a.remove(jack, ws, ivy.id), 403, 'FORBIDDEN')
    isError(t, await a.remove(bob, ws, ivy.id), 404, 'WORKSPACE_NOT_FOUND')
    t.strictSame(await a.memberList(alice, ws), before, 'members unchanged')
    t.equal((await a.get(ivy, ws)).statusCode, 200)

    const res = await a.remove(alice, ws, ivy.id)
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    isError(t, await a.get(ivy, ws), 404, 'WORKSPACE_NOT_FOUND')
    isError(t, await a.members(ivy, ws), 404, 'WORKSPACE_NOT_FOUND')
    t.strictSame(await a.list(ivy), [])
    t.strictSame((await a.memberList(alice, ws)).map(m => m.userId).sort(), [alice.id, jack.id].sort())
    isError(t, await a.remove(alice, ws, ivy.id), 404, 'NOT_FOUND')
    t.equal((await a.get(jack, ws)).statusCode, 200, 'the other member stays')
    t.equal((await a.get(alice, ws)).json<Workspace>().role, 'owner')
  })

  t.test('membership is per workspace', async t => {
    const ws1 = await createWorkspace(app, alice, 'one')
    const ws2 = await createWorkspace(app, alice, 'two')
    const kim = await registerUser(app)
    t.equal((await a.put(alice, ws1, { email: kim.email, role: 'editor' })).statusCode, 200)
    t.strictSame((await a.list(kim)).map(w => w.id), [ws1])
    isError(t, await a.get(kim, ws2), 404, 'WORKSPACE_NOT_FOUND')
    // an owner of one workspace is not an owner of another's
    const kims = await createWorkspace(app, kim, 'kims')
    isError(t, await a.del(kim, ws1), 403, 'FORBIDDEN')
    isError(t, await a.put(kim, ws1, { email: bob.email, role: 'viewer' }), 403, 'FORBIDDEN')
    isError(t, await a.del(alice, kims), 404, 'WORKSPACE_NOT_FOUND')
    t.equal((await a.get(alice, ws1)).statusCode, 200)
    t.equal((await a.get(kim, kims)).statusCode, 200)
  })
})
