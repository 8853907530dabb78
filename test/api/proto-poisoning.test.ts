import t from 'tap'
import { build, createWorkspace, registerUser } from '../helpers/app.js'
import { type Workspace } from '../helpers/http.js'

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
