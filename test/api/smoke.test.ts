import t from 'tap'
import { build, createWorkspace, registerUser } from '../helpers/app.js'

t.test('smoke', async t => {
  const app = await build(t)
  const u = await registerUser(app)
  const ws = await createWorkspace(app, u)
  const res = await app.inject({ url: `/v1/workspaces/${ws}`, headers: u.auth })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { id: ws, role: 'owner', revision: 0 })
})
