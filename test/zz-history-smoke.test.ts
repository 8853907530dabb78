import t from 'tap'
import { build, registerUser, createWorkspace } from './helper.js'

t.test('history smoke', async t => {
  const app = await build(t)
  const u = await registerUser(app)
  const ws = await createWorkspace(app, u)
  const h = u.auth
  const base = `/v1/workspaces/${ws}`
  for (let i = 1; i <= 5; i++) {
    const r = await app.inject({ method: 'PUT', url: `${base}/files/d/a.txt`, headers: h, payload: { content: `v${i}` } })
    t.ok(r.statusCode < 300, r.body)
  }
  let r = await app.inject({ method: 'POST', url: `${base}/operations`, headers: h, payload: { type: 'move', path: '/d', newPath: '/e' } })
  t.equal(r.statusCode, 200, r.body)
  r = await app.inject({ method: 'DELETE', url: `${base}/files/e/a.txt`, headers: h })
  t.equal(r.statusCode, 200, r.body)
  r = await app.inject({ url: `${base}/history/e/a.txt`, headers: h })
  t.equal(r.statusCode, 200, r.body)
  t.same(r.json().items.map((c: { revision: number }) => c.revision), [7, 6, 5, 4, 3, 2, 1], r.body)
  for (let rev = 1; rev <= 5; rev++) {
    r = await app.inject({ url: `${base}/files/d/a.txt?revision=${rev}`, headers: h })
    t.equal(r.json().content, `v${rev}`, r.body)
  }
  r = await app.inject({ url: `${base}/files/d/a.txt?revision=6`, headers: h })
  t.equal(r.statusCode, 404)
  r = await app.inject({ url: `${base}/files/e/a.txt?revision=6`, headers: h })
  t.equal(r.json().content, 'v5', r.body)
  r = await app.inject({ url: `${base}/files/e?revision=6`, headers: h })
  t.equal(r.json().children.length, 1, r.body)
  r = await app.inject({ method: 'POST', url: `${base}/revert`, headers: h, payload: { toRevision: 2 } })
  t.equal(r.statusCode, 200, r.body)
  r = await app.inject({ url: `${base}/files/d/a.txt`, headers: h })
  t.equal(r.json().content, 'v2', r.body)
  r = await app.inject({ url: `${base}/tree?depth=0`, headers: h })
  t.same(r.json().entries.map((e: { path: string }) => e.path), ['/d', '/d/a.txt'], r.body)
  r = await app.inject({ method: 'POST', url: `${base}/revert`, headers: h, payload: { sessionId: u.sessionId } })
  t.equal(r.statusCode, 200, r.body)
  r = await app.inject({ url: `${base}/tree?depth=0`, headers: h })
  t.same(r.json().entries, [], r.body)
  r = await app.inject({ url: '/v1/sessions', headers: h })
  t.equal(r.statusCode, 200, r.body)
  r = await app.inject({ url: `/v1/sessions/${u.sessionId}/log.md`, headers: h })
  t.equal(r.statusCode, 200, r.body)
  t.match(r.body, /## .* - file.write/)
  const key = { ...h, 'idempotency-key': 'k1' }
  const [a, b] = await Promise.all([
    app.inject({ method: 'PUT', url: `${base}/files/x.txt`, headers: key, payload: { content: 'x' } }),
    app.inject({ method: 'PUT', url: `${base}/files/x.txt`, headers: key, payload: { content: 'x' } })
  ])
  t.equal(a.statusCode, 201, a.body)
  t.equal(b.statusCode, 201, b.body)
  t.same(a.json(), b.json())
  r = await app.inject({ method: 'PUT', url: `${base}/files/x.txt`, headers: key, payload: { content: 'y' } })
  t.equal(r.statusCode, 422, r.body)
})
