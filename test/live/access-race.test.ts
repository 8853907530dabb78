import t from 'tap'
import { build, createWorkspace, listen, registerUser, sleep } from '../helpers/app.js'
import { expectStatus, request } from '../helpers/http.js'
import { connect } from '../helpers/ws.js'

/**
 * Issue "Hardening", finding 14: a member removed while their `subscribe` sits between the access
 * check and joining the channel must not keep the subscription. The removal is announced on the
 * workspace's bus channel, which this instance does not listen on yet (no one here has joined),
 * so the announcement is lost; only reading access again after joining can see it.
 * The window is widened for real by holding the join until the removal has been answered.
 */
t.test('a member removed between the access check and the join does not keep the subscription', async t => {
  const app = await build(t)
  const base = await listen(app)
  const owner = await registerUser(base)
  const member = await registerUser(base)
  const workspaceId = await createWorkspace(base, owner)
  expectStatus(await request(base, 'PUT', `/v1/workspaces/${workspaceId}/members`, { token: owner.token, payload: { email: member.email, role: 'viewer' } }), 200, 'add member')

  const { fanout } = app
  const join = fanout.join.bind(fanout)
  let removed = false
  let removal = 0
  fanout.join = async (...args: Parameters<typeof join>) => {
    if (!removed) {
      removed = true
      removal = (await request(base, 'DELETE', `/v1/workspaces/${workspaceId}/members/${member.id}`, { token: owner.token })).statusCode
      await sleep(50) // the announcement has gone out (to no one here)
    }
    return await join(...args)
  }
  t.teardown(() => { fanout.join = join })

  const ws = await connect(t, base, { token: member.token })
  const answer = await ws.subscribe(workspaceId)
  t.match(answer, { type: 'error', code: 'WORKSPACE_NOT_FOUND', channel: `workspace:${workspaceId}` }, 'the subscribe is refused')
  t.equal(removal, 204, 'the member was removed while the subscribe was joining')

  expectStatus(await request(base, 'PUT', `/v1/workspaces/${workspaceId}/files/after.txt`, { token: owner.token, payload: { content: 'secret' } }), 201, 'a write after the removal')
  await sleep(500)
  t.same(ws.revisions(workspaceId), [], 'no event reaches the removed member')
  t.notOk(ws.messages.some(m => m.type === 'subscribed'), 'never subscribed')

  t.test('a member still in the workspace subscribes as before', async t => {
    const other = await registerUser(base)
    expectStatus(await request(base, 'PUT', `/v1/workspaces/${workspaceId}/members`, { token: owner.token, payload: { email: other.email, role: 'viewer' } }), 200, 'add member')
    const c = await connect(t, base, { token: other.token })
    t.match(await c.subscribe(workspaceId), { type: 'subscribed', revision: 1 })
  })
})
