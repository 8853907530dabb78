import t from 'tap'
import { build, createWorkspace, listen, registerUser } from '../helpers/app.js'
import { type Workspace } from '../helpers/http.js'
import { connect } from '../helpers/ws.js'

t.test('prototype poisoning in a JSON body is 400 and changes nothing', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  const bodies = [
    '{"content":"x","metadata":{"__proto__":{"isAdmin":true}}}',
    '{"content":"x","metadata":{"constructor":{"prototype":{"isAdmin":true}}}}',
    '{"__proto__":{"isAdmin":true},"content":"x"}'
  ]
  for (const payload of bodies) {
    const res = await app.inject({
      method: 'PUT',
      url: `/v1/workspaces/${ws}/files/a.txt`,
      headers: { ...user.auth, 'content-type': 'application/json' },
      payload
    })
    t.equal(res.statusCode, 400, payload)
    t.equal(res.json<{ code: string }>().code, 'VALIDATION_FAILED')
  }
  const after = await app.inject({ url: `/v1/workspaces/${ws}`, headers: user.auth })
  t.equal(after.json<Workspace>().revision, 0, 'nothing was written')
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype untouched')
})

t.test('prototype poisoning in a WebSocket message is VALIDATION_FAILED, as in a REST body, and changes nothing', async t => {
  // Found by test/contract/ws-fuzz.test.ts: an RPC's metadata with a `__proto__` key was stored,
  // where the same metadata over REST is refused.
  const app = await build(t)
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  const client = await connect(t, await listen(app), { token: user.token })
  const frames = [
    `{"type":"rpc","id":1,"method":"files.write","params":{"workspaceId":"${ws}","path":"/a.txt","content":"x","metadata":{"__proto__":{"isAdmin":true}}}}`,
    `{"type":"rpc","id":2,"method":"operations.apply","params":{"workspaceId":"${ws}","type":"create","path":"/b.txt","metadata":{"constructor":{"prototype":{"isAdmin":true}}}}}`,
    `{"__proto__":{"isAdmin":true},"type":"subscribe","channel":"workspace:${ws}"}`,
    `{"type":"broadcast","channel":"workspace:${ws}","data":{"a":[{"__proto__":{}}]}}`
  ]
  for (const frame of frames) {
    const from = client.messages.length
    client.send(frame)
    const answer = await client.next(m => ['error', 'rpc.error', 'rpc.result', 'subscribed'].includes(m.type), 'the answer', from)
    t.match(answer, { type: 'error', code: 'VALIDATION_FAILED', message: /prototype/ }, frame.slice(0, 80))
  }
  // The same words as ordinary values and keys are fine.
  const ok = await client.rpc('files.write', { workspaceId: ws, path: '/c.txt', content: '__proto__', metadata: { note: 'constructor', constructor: 'x', prototype: 1 } })
  t.equal(ok.type, 'rpc.result', JSON.stringify(ok))
  const after = await app.inject({ url: `/v1/workspaces/${ws}`, headers: user.auth })
  t.equal(after.json<Workspace>().revision, 1, 'only the last write was applied')
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype untouched')
})
