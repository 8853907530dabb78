import t from 'tap'
import { createTestDatabase, createWorkspace, REDIS_URL, registerUser, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { expectStatus, request } from '../helpers/http.js'
import { connect, type Client, type Msg } from '../helpers/ws.js'

/**
 * Presence across two server processes on one Redis: members set on one instance are in the list
 * and the events of the other, and the members of an instance that is killed (SIGKILL: no close,
 * no leave sent) are reported `leave` on the other within one heartbeat interval.
 */

const HEARTBEAT = 1_000

async function members (c: Client, workspaceId: string): Promise<Msg> {
  const from = c.messages.length
  const subscribed = await c.subscribe(workspaceId)
  if (subscribed.type !== 'subscribed') throw new Error(JSON.stringify(subscribed))
  return await c.next(m => m.type === 'presence.members', 'presence.members', from)
}

t.test('presence across instances', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const env = { DATABASE_URL, REDIS_URL, JWT_SECRET: TEST_SECRET, WS_HEARTBEAT_MS: String(HEARTBEAT) }
  const [a, b] = await Promise.all([spawnServer(t, { env }), spawnServer(t, { env })])
  const owner = await registerUser(a.base)
  const viewer = await registerUser(a.base)
  const workspaceId = await createWorkspace(a.base, owner)
  expectStatus(await request(a.base, 'PUT', `/v1/workspaces/${workspaceId}/members`, { token: owner.token, payload: { email: viewer.email, role: 'viewer' } }), 200, 'add member')
  const channel = `workspace:${workspaceId}`

  const onA = await connect(t, a.base, { token: owner.token })
  t.same((await members(onA, workspaceId)).members, [])
  onA.send({ type: 'presence.set', channel, state: { file: '/on-a.txt' } })
  await onA.next(m => m.type === 'presence' && m.kind === 'join', 'own join')

  const onB = await connect(t, b.base, { token: viewer.token })
  t.same((await members(onB, workspaceId)).members, [{ sessionId: owner.sessionId, userId: owner.id, state: { file: '/on-a.txt' } }], 'B lists the member set on A')
  const fromA = onA.messages.length
  onB.send({ type: 'presence.set', channel, state: { file: '/on-b.txt' } })
  t.match(await onA.next(m => m.type === 'presence', 'B\'s join reaches A', fromA), { kind: 'join', sessionId: viewer.sessionId, state: { file: '/on-b.txt' } })
  const fromB = onB.messages.length
  onA.send({ type: 'presence.set', channel, state: { file: '/moved.txt' } })
  t.match(await onB.next(m => m.type === 'presence' && m.sessionId === owner.sessionId, 'A\'s update reaches B', fromB), { kind: 'update', state: { file: '/moved.txt' } })

  // A dies without a word: B must report its member gone within one heartbeat interval.
  const before = onB.messages.length
  a.kill('SIGKILL')
  const killed = Date.now()
  await a.exited
  const leave = await onB.next(m => m.type === 'presence' && m.kind === 'leave', 'leave of the killed instance\'s member', before, 5 * HEARTBEAT)
  const took = Date.now() - killed
  t.match(leave, { sessionId: owner.sessionId, userId: owner.id, state: { file: '/moved.txt' } })
  t.ok(took <= HEARTBEAT + 300, `leave ${took} ms after the kill (heartbeat ${HEARTBEAT} ms)`)

  // And a newcomer on B is not shown the ghost.
  const late = await connect(t, b.base, { token: viewer.token })
  t.same((await members(late, workspaceId)).members, [{ sessionId: viewer.sessionId, userId: viewer.id, state: { file: '/on-b.txt' } }], 'no ghost in the list')
  onB.close()
  late.close()
})
