import t from 'tap'
import { build, createTestDatabase, createWorkspace, listen, PASSWORD, REDIS_URL, registerUser, sleep, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { expectStatus, isError, request, type AuthResult, type Target } from '../helpers/http.js'
import { connect } from '../helpers/ws.js'

/**
 * Issue "Hardening", finding 15: logout ends the session's access tokens (within a second, on
 * every instance) and closes its sockets with 4401; and finding 14: two tabs refreshing with the
 * same refresh token at once get the same new pair instead of logging each other out.
 */

const me = async (target: Target, token: string): Promise<number> => (await request(target, 'GET', '/v1/me', { token })).statusCode
const logout = async (target: Target, refreshToken: string): Promise<number> =>
  (await request(target, 'POST', '/v1/auth/logout', { payload: { refreshToken } })).statusCode
const refresh = async (target: Target, refreshToken: string): Promise<ReturnType<typeof request>> =>
  await request(target, 'POST', '/v1/auth/refresh', { payload: { refreshToken } })
const login = async (target: Target, email: string): Promise<AuthResult> =>
  expectStatus<AuthResult>(await request(target, 'POST', '/v1/auth/login', { payload: { email, password: PASSWORD } }), 200, 'login')

t.test('logout ends the session\'s access tokens at once, and only that session\'s', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const other = await login(app, user.email)
  t.equal(await me(app, user.token), 200, 'the token works before logout')

  t.equal(await logout(app, user.refreshToken), 204)
  const res = await request(app, 'GET', '/v1/me', { token: user.token })
  isError(t, res, 401, 'UNAUTHENTICATED', 'the session has ended (logged out)')
  isError(t, await request(app, 'GET', '/v1/workspaces', { token: user.token }), 401, 'UNAUTHENTICATED')
  isError(t, await request(app, 'POST', '/v1/workspaces', { token: user.token, payload: { name: 'after logout' } }), 401, 'UNAUTHENTICATED')
  t.equal((await app.db.selectFrom('workspaces').select('id').where('owner_id', '=', user.id).execute()).length, 0, 'nothing was created with the ended token')
  isError(t, await refresh(app, user.refreshToken), 401, 'UNAUTHENTICATED', 'its refresh token is revoked too')

  t.equal(await me(app, other.accessToken), 200, 'another session of the same user goes on')
  t.equal(await logout(app, user.refreshToken), 204, 'a second logout is still 204')

  // A token refreshed before the logout belongs to the same session: it ends with it.
  const third = await login(app, user.email)
  const rotated = expectStatus<AuthResult>(await refresh(app, third.refreshToken), 200, 'refresh')
  t.equal(await me(app, third.accessToken), 200)
  t.equal(await logout(app, rotated.refreshToken), 204)
  t.equal(await me(app, third.accessToken), 401, 'the older token of the session ended')
  t.equal(await me(app, rotated.accessToken), 401, 'the newer token of the session ended')
})

t.test('a restarted instance still refuses the tokens of a session ended before it started', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const first = await build(t, { DATABASE_URL })
  const user = await registerUser(first)
  t.equal(await logout(first, user.refreshToken), 204)
  const second = await build(t, { DATABASE_URL })
  t.equal(await me(second, user.token), 401, 'the new instance read the ended session at its start')
})

t.test('logout on one instance: within a second every instance refuses the token and closes its sockets with 4401', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const env = { DATABASE_URL, REDIS_URL, JWT_SECRET: TEST_SECRET }
  const [a, b] = await Promise.all([spawnServer(t, { env }), spawnServer(t, { env })])
  const user = await registerUser(a.base)
  const other = await login(a.base, user.email)
  const workspaceId = await createWorkspace(a.base, user)

  const onB = await connect(t, b.base, { token: user.token })
  await onB.join(workspaceId)
  const onA = await connect(t, a.base, { token: user.token })
  const otherOnB = await connect(t, b.base, { token: other.accessToken })
  await otherOnB.join(workspaceId)
  t.equal(await me(b.base, user.token), 200, 'B accepts the token before logout')

  const started = Date.now()
  t.equal(await logout(a.base, user.refreshToken), 204)
  t.equal(await me(a.base, user.token), 401, 'A refuses it at once')
  t.match(await onA.closed, { code: 4401, reason: 'SESSION_ENDED' }, 'A closes the session\'s socket with 4401')
  t.match(await onB.closed, { code: 4401, reason: 'SESSION_ENDED' }, 'B closes the session\'s socket with 4401')
  const closedAfter = Date.now() - started
  t.ok(closedAfter < 1_000, `B closed it within a second (${closedAfter} ms)`)
  t.equal(await me(b.base, user.token), 401, 'B refuses the token')
  t.ok(Date.now() - started < 1_500, 'B refused it within a second of the logout answer')

  t.equal(await me(b.base, other.accessToken), 200, 'the user\'s other session goes on')
  await sleep(1_000)
  t.notOk(otherOnB.isClosed, 'the other session\'s socket stays open')
  const ws = await connect(t, b.base)
  ws.send({ type: 'auth', token: user.token })
  t.match(await ws.closed, { code: 4401, reason: 'UNAUTHENTICATED' }, 'a new socket with the ended token is refused')
})

t.test('two tabs refreshing with the same token at once get the same new pair', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const [x, y] = await Promise.all([refresh(app, user.refreshToken), refresh(app, user.refreshToken)])
  const px = expectStatus<AuthResult>(x, 200, 'first tab')
  const py = expectStatus<AuthResult>(y, 200, 'second tab')
  t.equal(py.refreshToken, px.refreshToken, 'the same refresh token')
  t.equal(py.accessToken, px.accessToken, 'the same access token')
  t.equal(py.sessionId, user.sessionId)
  t.ok(py.expiresIn > 890 && py.expiresIn <= 900, `expiresIn counts down from the same token (${py.expiresIn})`)
  t.equal(await me(app, py.accessToken), 200)
  const rows = await app.db.selectFrom('refresh_tokens').select('id').where('session_id', '=', user.sessionId).execute()
  t.equal(rows.length, 2, 'one new token issued, not two')

  // The pair rotates on normally from there, whichever tab goes first.
  const next = expectStatus<AuthResult>(await refresh(app, py.refreshToken), 200, 'next rotation')
  t.equal(await me(app, next.accessToken), 200)

  t.test('once the new token has been used, the old one coming back is theft: the family is revoked', async t => {
    isError(t, await refresh(app, user.refreshToken), 401, 'UNAUTHENTICATED', 'refresh token already used; its session has been revoked')
    isError(t, await refresh(app, next.refreshToken), 401, 'UNAUTHENTICATED')
  })
})

t.test('the reuse window is REFRESH_REUSE_WINDOW_MS: past it, reuse revokes the family', async t => {
  const app = await build(t, { REFRESH_REUSE_WINDOW_MS: '300' })
  const user = await registerUser(app)
  const pair = expectStatus<AuthResult>(await refresh(app, user.refreshToken), 200, 'refresh')
  const within = expectStatus<AuthResult>(await refresh(app, user.refreshToken), 200, 'within the window')
  t.equal(within.refreshToken, pair.refreshToken)
  await sleep(400)
  isError(t, await refresh(app, user.refreshToken), 401, 'UNAUTHENTICATED', 'refresh token already used; its session has been revoked')
  isError(t, await refresh(app, pair.refreshToken), 401, 'UNAUTHENTICATED', 'the family is revoked')

  t.test('0 switches it off', async t => {
    const strict = await build(t, { REFRESH_REUSE_WINDOW_MS: '0' })
    const u = await registerUser(strict)
    expectStatus<AuthResult>(await refresh(strict, u.refreshToken), 200, 'refresh')
    isError(t, await refresh(strict, u.refreshToken), 401, 'UNAUTHENTICATED')
  })

  t.test('after logout the window gives nothing back', async t => {
    const u = await registerUser(app)
    const p = expectStatus<AuthResult>(await refresh(app, u.refreshToken), 200, 'refresh')
    t.equal(await logout(app, p.refreshToken), 204)
    isError(t, await refresh(app, u.refreshToken), 401, 'UNAUTHENTICATED')
  })
})

t.test('over real HTTP too: logout answers before the next request is refused', async t => {
  const app = await build(t)
  const base = await listen(app)
  const user = await registerUser(base)
  t.equal(await logout(base, user.refreshToken), 204)
  t.equal(await me(base, user.token), 401)
})
