import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import * as authService from '../../src/accounts/auth.js'
import { build, createTestDatabase, createWorkspace, PASSWORD, registerUser, ROOT_DIR, TS_IMPORT, sleep, TEST_SECRET } from '../helpers/app.js'
import { isError, JSON_TYPE, request, type AuthResult, type Res } from '../helpers/http.js'
import { accessClaims, ecKeyPair, nowSeconds, rsaKeyPair, signJwt } from '../helpers/jwt.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function decodePart (token: string, index: 0 | 1): Record<string, unknown> {
  const part = token.split('.')[index]
  if (part === undefined) throw new Error(`not a JWT: ${token}`)
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>
}

async function post (app: FastifyInstance, url: string, payload: unknown): Promise<Res> {
  return await request(app, 'POST', url, { payload })
}
const register = async (app: FastifyInstance, email: string, password = PASSWORD): Promise<Res> =>
  await post(app, '/v1/auth/register', { email, password })
const login = async (app: FastifyInstance, email: string, password = PASSWORD): Promise<Res> =>
  await post(app, '/v1/auth/login', { email, password })
const refresh = async (app: FastifyInstance, refreshToken: string): Promise<Res> =>
  await post(app, '/v1/auth/refresh', { refreshToken })
const me = async (app: FastifyInstance, token: string | undefined, headers: Record<string, string> = {}): Promise<Res> =>
  await request(app, 'GET', '/v1/me', { token, headers })

let emailCount = 0
const newEmail = (): string => `auth${++emailCount}-${randomUUID().slice(0, 8)}@example.com`

type Tap = Test

/** Asserts the auth response shape and that the access token is ours, for this user and session. */
function assertAuthResult (t: Tap, body: AuthResult, email: string): void {
  t.strictSame(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'sessionId', 'user'])
  t.strictSame(Object.keys(body.user).sort(), ['email', 'id', 'permissions'])
  t.match(body.user.id, UUID)
  t.equal(body.user.email, email.toLowerCase())
  t.strictSame(body.user.permissions, ['file.read', 'file.write'])
  t.equal(body.expiresIn, 900)
  t.match(body.sessionId, UUID)
  t.type(body.refreshToken, 'string')
  t.ok(body.refreshToken.length >= 32, 'refresh token has enough entropy')
  t.equal(body.accessToken.split('.').length, 3, 'access token is a JWT')
  t.match(decodePart(body.accessToken, 0), { alg: 'HS256' })
  const claims = decodePart(body.accessToken, 1)
  t.equal(claims.sub, body.user.id)
  t.equal(claims.sid, body.sessionId)
  t.strictSame(claims.permissions, ['file.read', 'file.write'])
  t.equal(Number(claims.exp) - Number(claims.iat), 900)
  t.notMatch(JSON.stringify(body), /password|scrypt/i, 'no password material in the answer')
}

t.test('register', async t => {
  const app = await build(t)

  t.test('201 with the auth result', async t => {
    const email = newEmail()
    const res = await register(app, email)
    t.equal(res.statusCode, 201, res.body)
    t.equal(res.headers['content-type'], JSON_TYPE)
    const body = res.json<AuthResult>()
    assertAuthResult(t, body, email)
    const who = await me(app, body.accessToken)
    t.equal(who.statusCode, 200, who.body)
    t.strictSame(who.json(), { id: body.user.id, email, permissions: ['file.read', 'file.write'] })
  })

  t.test('the email is stored lowercased', async t => {
    const email = `Mixed.Case-${randomUUID().slice(0, 8)}@Example.COM`
    const res = await register(app, email)
    t.equal(res.statusCode, 201, res.body)
    t.equal(res.json<AuthResult>().user.email, email.toLowerCase())
    t.equal((await login(app, email.toLowerCase())).statusCode, 200)
    t.equal((await login(app, email.toUpperCase())).statusCode, 200)
  })

  t.test('409 EMAIL_TAKEN, also for a differently-cased email; the account is unchanged', async t => {
    const email = newEmail()
    const first = await register(app, email)
    t.equal(first.statusCode, 201, first.body)
    const firstId = first.json<AuthResult>().user.id

    isError(t, await register(app, email, 'another password'), 409, 'EMAIL_TAKEN')
    isError(t, await register(app, email.toUpperCase(), 'another password'), 409, 'EMAIL_TAKEN')

    const ok = await login(app, email)
    t.equal(ok.statusCode, 200, 'the original password still logs in')
    t.equal(ok.json<AuthResult>().user.id, firstId)
    isError(t, await login(app, email, 'another password'), 401, 'INVALID_CREDENTIALS')
  })

  t.test('password length: 7 → 400, 8 ok, 200 ok, 201 → 400', async t => {
    const short = newEmail()
    const body = isError(t, await register(app, short, 'a'.repeat(7)), 400, 'VALIDATION_FAILED')
    t.ok(Array.isArray(body.details?.errors) && body.details.errors.length > 0, 'details carry the schema errors')
    t.match(body.details, { errors: [{ path: '/password', keyword: 'minLength' }] })
    // nothing was created: the email is still free
    t.equal((await register(app, short, 'a'.repeat(8))).statusCode, 201)

    const eight = newEmail()
    t.equal((await register(app, eight, 'b'.repeat(8))).statusCode, 201)
    t.equal((await login(app, eight, 'b'.repeat(8))).statusCode, 200)

    const twoHundred = newEmail()
    t.equal((await register(app, twoHundred, 'c'.repeat(200))).statusCode, 201)
    t.equal((await login(app, twoHundred, 'c'.repeat(200))).statusCode, 200)

    const long = newEmail()
    const tooLong = isError(t, await register(app, long, 'd'.repeat(201)), 400, 'VALIDATION_FAILED')
    t.match(tooLong.details, { errors: [{ path: '/password', keyword: 'maxLength' }] })
    // nothing was created: the email is still free
    t.equal((await register(app, long, 'd'.repeat(20))).statusCode, 201)
  })

  t.test('a bad email is 400 and creates nothing', async t => {
    for (const email of ['not-an-email', '', 'a@', '@example.com', 'two words@example.com']) {
      const body = isError(t, await register(app, email), 400, 'VALIDATION_FAILED')
      t.match(body.details, { errors: [{ path: '/email' }] }, `email ${JSON.stringify(email)}`)
    }
    const tooLong = `${'x'.repeat(320)}@example.com`
    isError(t, await register(app, tooLong), 400, 'VALIDATION_FAILED')
  })

  t.test('an unknown body property is 400 and creates nothing', async t => {
    const email = newEmail()
    const body = isError(t, await post(app, '/v1/auth/register', { email, password: PASSWORD, permissions: ['admin'] }), 400, 'VALIDATION_FAILED')
    t.match(body.details, { errors: [{ keyword: 'additionalProperties' }] })
    isError(t, await login(app, email), 401, 'INVALID_CREDENTIALS')
  })

  t.test('malformed JSON is 400 VALIDATION_FAILED', async t => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: '{"email": "x@example.com", "password": '
    })
    isError(t, res, 400, 'VALIDATION_FAILED')
    const empty = await app.inject({ method: 'POST', url: '/v1/auth/register', headers: { 'content-type': 'application/json' }, payload: '' })
    isError(t, empty, 400, 'VALIDATION_FAILED')
    isError(t, await login(app, 'x@example.com'), 401, 'INVALID_CREDENTIALS')
  })

  t.test('a body that is not JSON is 415', async t => {
    const email = newEmail()
    const res = await app.inject({ method: 'POST', url: '/v1/auth/register', headers: { 'content-type': 'text/plain' }, payload: `email=${email}&password=${PASSWORD}` })
    isError(t, res, 415, 'UNSUPPORTED_MEDIA_TYPE')
    const form = await app.inject({ method: 'POST', url: '/v1/auth/register', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `email=${email}&password=x` })
    isError(t, form, 415, 'UNSUPPORTED_MEDIA_TYPE')
    isError(t, await login(app, email), 401, 'INVALID_CREDENTIALS')
  })

  t.test('wrong types are 400, not coerced', async t => {
    const email = newEmail()
    const cases: unknown[] = [
      { email, password: 12345678 },
      { email: 12345, password: PASSWORD },
      { email, password: null },
      { email, password: ['correct horse battery'] },
      { email },
      { password: PASSWORD },
      {},
      [email, PASSWORD],
      'just a string'
    ]
    for (const payload of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/auth/register', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
      isError(t, res, 400, 'VALIDATION_FAILED')
    }
    // the first case would have been a valid account had 12345678 been coerced to a string
    isError(t, await login(app, email, '12345678'), 401, 'INVALID_CREDENTIALS')
  })
})

t.test('ALLOW_REGISTRATION=false: register is 403, login still works', async t => {
  const app = await build(t, { ALLOW_REGISTRATION: 'false' })
  t.equal(app.config.ALLOW_REGISTRATION, false)
  const email = newEmail()
  isError(t, await register(app, email), 403, 'FORBIDDEN')
  isError(t, await login(app, email), 401, 'INVALID_CREDENTIALS')

  // an account made some other way (an admin script) still logs in
  const signer = app.signAccessToken
  if (signer === undefined) throw new Error('expected HS256 mode')
  const made = await authService.register({ db: app.db, sign: signer, sessions: app.sessions, passwordCost: app.config.PASSWORD_HASH_COST }, email, PASSWORD)
  const res = await login(app, email)
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json<AuthResult>().user.id, made.user.id)
})

t.test('PASSWORD_HASH_COST: new passwords hashed at that cost; each stored hash keeps its own', async t => {
  const url = await createTestDatabase(t)
  const costly = await build(t, { DATABASE_URL: url, PASSWORD_HASH_COST: '11' })
  const email = newEmail()
  t.equal((await register(costly, email)).statusCode, 201)
  const stored = async (): Promise<string> => (await costly.db.selectFrom('users').select('password_hash').where('email', '=', email).executeTakeFirstOrThrow()).password_hash ?? ''
  t.match(await stored(), /^scrypt\$2048\$8\$1\$/, 'N = 2^11')
  const cheap = await build(t, { DATABASE_URL: url, PASSWORD_HASH_COST: '10' })
  t.equal((await login(cheap, email)).statusCode, 200, 'an older hash still verifies after the cost changed')
  isError(t, await login(cheap, email, 'not the password'), 401, 'INVALID_CREDENTIALS')
  isError(t, await login(cheap, newEmail()), 401, 'INVALID_CREDENTIALS')
  t.match(await stored(), /^scrypt\$2048\$/, 'a login does not rehash')
})

t.test('login', async t => {
  const app = await build(t)
  const email = newEmail()
  const reg = await register(app, email)
  t.equal(reg.statusCode, 201)
  const registered = reg.json<AuthResult>()

  t.test('200 with a fresh session', async t => {
    const res = await login(app, email)
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.headers['content-type'], JSON_TYPE)
    const body = res.json<AuthResult>()
    assertAuthResult(t, body, email)
    t.equal(body.user.id, registered.user.id)
    t.not(body.sessionId, registered.sessionId, 'a new session')
    t.not(body.refreshToken, registered.refreshToken)
    t.equal((await me(app, body.accessToken)).statusCode, 200)
  })

  t.test('wrong password and unknown email: the same 401', async t => {
    const wrong = await login(app, email, 'wrong password!')
    const unknown = await login(app, newEmail(), 'wrong password!')
    isError(t, wrong, 401, 'INVALID_CREDENTIALS')
    isError(t, unknown, 401, 'INVALID_CREDENTIALS')
    t.equal(wrong.body, unknown.body, 'identical bodies')
    t.strictSame(wrong.json(), { statusCode: 401, code: 'INVALID_CREDENTIALS', error: 'Unauthorized', message: 'invalid email or password' })
    t.equal(wrong.headers['content-type'], unknown.headers['content-type'])
    t.equal(wrong.headers['www-authenticate'], unknown.headers['www-authenticate'])
  })

  t.test('an invalid body is 400, not 401', async t => {
    isError(t, await login(app, email, 'short'), 400, 'VALIDATION_FAILED')
    isError(t, await post(app, '/v1/auth/login', { email }), 400, 'VALIDATION_FAILED')
  })
})

t.test('refresh tokens rotate; reuse revokes the family', async t => {
  const app = await build(t)
  const user = await registerUser(app)

  const first = await refresh(app, user.refreshToken)
  t.equal(first.statusCode, 200, first.body)
  const pair1 = first.json<AuthResult>()
  assertAuthResult(t, pair1, user.email)
  t.equal(pair1.user.id, user.id)
  t.equal(pair1.sessionId, user.sessionId, 'the session carries over')
  t.not(pair1.refreshToken, user.refreshToken, 'a new refresh token')
  t.equal((await me(app, pair1.accessToken)).statusCode, 200, 'the new access token works')

  const second = await refresh(app, pair1.refreshToken)
  t.equal(second.statusCode, 200, 'the new refresh token works')
  const pair2 = second.json<AuthResult>()
  t.not(pair2.refreshToken, pair1.refreshToken)

  // the first token, already used, comes back: theft. The whole family goes.
  const reuse = await refresh(app, user.refreshToken)
  isError(t, reuse, 401, 'UNAUTHENTICATED')
  isError(t, await refresh(app, pair2.refreshToken), 401, 'UNAUTHENTICATED')
  isError(t, await refresh(app, pair1.refreshToken), 401, 'UNAUTHENTICATED')

  // other sessions of the same user are not touched
  const other = await login(app, user.email)
  t.equal(other.statusCode, 200)
  t.equal((await refresh(app, other.json<AuthResult>().refreshToken)).statusCode, 200, 'another family still rotates')

  t.test('an expired refresh token is 401', async t => {
    const u = await registerUser(app)
    await app.db.updateTable('refresh_tokens').set({ expires_at: new Date(Date.now() - 1000) })
      .where('session_id', '=', u.sessionId).execute()
    isError(t, await refresh(app, u.refreshToken), 401, 'UNAUTHENTICATED')
  })

  t.test('unknown and invalid refresh tokens', async t => {
    isError(t, await refresh(app, 'no-such-token'), 401, 'UNAUTHENTICATED')
    isError(t, await refresh(app, ''), 400, 'VALIDATION_FAILED')
    isError(t, await refresh(app, 'x'.repeat(513)), 400, 'VALIDATION_FAILED')
    isError(t, await post(app, '/v1/auth/refresh', { refreshToken: user.refreshToken, extra: 1 }), 400, 'VALIDATION_FAILED')
    isError(t, await post(app, '/v1/auth/refresh', {}), 400, 'VALIDATION_FAILED')
  })
})

t.test('logout', async t => {
  const app = await build(t)

  t.test('204, then the refresh token is dead', async t => {
    const user = await registerUser(app)
    const res = await post(app, '/v1/auth/logout', { refreshToken: user.refreshToken })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    isError(t, await refresh(app, user.refreshToken), 401, 'UNAUTHENTICATED')
  })

  t.test('logging out with the newest token revokes the family', async t => {
    const user = await registerUser(app)
    const rotated = (await refresh(app, user.refreshToken)).json<AuthResult>()
    t.equal((await post(app, '/v1/auth/logout', { refreshToken: rotated.refreshToken })).statusCode, 204)
    isError(t, await refresh(app, rotated.refreshToken), 401, 'UNAUTHENTICATED')
  })

  t.test('logging out with an older token of the family revokes the newest too', async t => {
    const user = await registerUser(app)
    const rotated = (await refresh(app, user.refreshToken)).json<AuthResult>()
    t.equal((await post(app, '/v1/auth/logout', { refreshToken: user.refreshToken })).statusCode, 204)
    isError(t, await refresh(app, rotated.refreshToken), 401, 'UNAUTHENTICATED')
  })

  t.test('only that session ends', async t => {
    const user = await registerUser(app)
    const other = (await login(app, user.email)).json<AuthResult>()
    t.equal((await post(app, '/v1/auth/logout', { refreshToken: user.refreshToken })).statusCode, 204)
    t.equal((await refresh(app, other.refreshToken)).statusCode, 200)
  })

  t.test('an unknown token is 204 (nothing to revoke); an invalid body is 400', async t => {
    const res = await post(app, '/v1/auth/logout', { refreshToken: 'never-issued' })
    t.equal(res.statusCode, 204)
    isError(t, await post(app, '/v1/auth/logout', {}), 400, 'VALIDATION_FAILED')
  })
})

t.test('GET /v1/me and access tokens', async t => {
  const app = await build(t)
  const user = await registerUser(app)

  t.test('200 with the caller', async t => {
    const res = await me(app, user.token)
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.headers['content-type'], JSON_TYPE)
    t.strictSame(res.json(), { id: user.id, email: user.email, permissions: ['file.read', 'file.write'] })
  })

  t.test('a token we sign by hand with the right secret works (control for the cases below)', async t => {
    const token = signJwt(accessClaims(user.id, user.sessionId), { alg: 'HS256', secret: TEST_SECRET })
    const res = await me(app, token)
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json<{ id: string }>().id, user.id)
  })

  t.test('no token → 401 UNAUTHENTICATED', async t => {
    isError(t, await me(app, undefined), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, undefined, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, undefined, { authorization: 'Bearer' }), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, undefined, { authorization: user.token }), 401, 'UNAUTHENTICATED')
  })

  t.test('garbage tokens → 401 UNAUTHENTICATED', async t => {
    for (const token of ['garbage', 'a.b.c', `${user.token}x`, user.token.split('.').slice(0, 2).join('.')]) {
      isError(t, await me(app, token), 401, 'UNAUTHENTICATED')
    }
    // a signature from the token tampered with a different sub
    const [head, , sig] = user.token.split('.')
    const forged = `${head ?? ''}.${Buffer.from(JSON.stringify(accessClaims(randomUUID(), user.sessionId))).toString('base64url')}.${sig ?? ''}`
    isError(t, await me(app, forged), 401, 'UNAUTHENTICATED')
  })

  t.test('alg: none → 401', async t => {
    const claims = accessClaims(user.id, user.sessionId)
    isError(t, await me(app, signJwt(claims, { alg: 'none' })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'none' }, { alg: 'None' })), 401, 'UNAUTHENTICATED')
    // a none token that keeps a real signature
    const real = signJwt(claims, { alg: 'HS256', secret: TEST_SECRET })
    const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
    const [, payload, sig] = real.split('.')
    isError(t, await me(app, `${noneHeader}.${payload ?? ''}.${sig ?? ''}`), 401, 'UNAUTHENTICATED')
  })

  t.test('a token signed with another secret → 401', async t => {
    const token = signJwt(accessClaims(user.id, user.sessionId), { alg: 'HS256', secret: 'another-secret-of-at-least-thirty-two-chars' })
    isError(t, await me(app, token), 401, 'UNAUTHENTICATED')
  })

  t.test('an HS256 signature under a header that says RS256 (or HS512) → 401', async t => {
    const claims = accessClaims(user.id, user.sessionId)
    isError(t, await me(app, signJwt(claims, { alg: 'HS256', secret: TEST_SECRET }, { alg: 'RS256' })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'HS256', secret: TEST_SECRET }, { alg: 'HS512' })), 401, 'UNAUTHENTICATED')
    // a correctly signed HS512 token: the right secret, but only HS256 is configured
    isError(t, await me(app, signJwt(claims, { alg: 'HS512', secret: TEST_SECRET })), 401, 'UNAUTHENTICATED')
    // a real RS256 token from a key we do not know
    isError(t, await me(app, signJwt(claims, { alg: 'RS256', privateKey: rsaKeyPair().privateKey })), 401, 'UNAUTHENTICATED')
  })

  t.test('an expired token → 401 TOKEN_EXPIRED', async t => {
    const iat = nowSeconds() - 3600
    const token = signJwt(accessClaims(user.id, user.sessionId, { iat, exp: iat + 900 }), { alg: 'HS256', secret: TEST_SECRET })
    const body = isError(t, await me(app, token), 401, 'TOKEN_EXPIRED')
    t.equal(body.message, 'access token expired')
    // expired and badly signed: not a valid token at all, so not "expired"
    const bad = signJwt(accessClaims(user.id, user.sessionId, { iat, exp: iat + 900 }), { alg: 'HS256', secret: 'another-secret-of-at-least-thirty-two-chars' })
    isError(t, await me(app, bad), 401, 'UNAUTHENTICATED')
  })

  t.test('a token accepted a moment ago is refused once it expires (verified tokens are cached only until exp)', async t => {
    const iat = nowSeconds() - 600
    // (2: a whole second at least before it expires, wherever in the current second this runs)
    const exp = nowSeconds() + 2
    const token = signJwt(accessClaims(user.id, user.sessionId, { iat, exp }), { alg: 'HS256', secret: TEST_SECRET })
    t.equal((await me(app, token)).statusCode, 200)
    t.equal((await me(app, token)).statusCode, 200, 'again, from the cache')
    await sleep(exp * 1000 - Date.now() + 50)
    isError(t, await me(app, token), 401, 'TOKEN_EXPIRED')
  })

  t.test('a valid signature over bad claims → 401', async t => {
    const sign = (claims: Record<string, unknown>): string => signJwt(claims, { alg: 'HS256', secret: TEST_SECRET })
    isError(t, await me(app, sign(accessClaims('not-a-uuid', user.sessionId))), 401, 'UNAUTHENTICATED')
    const { sub: _, ...noSub } = accessClaims(user.id, user.sessionId)
    isError(t, await me(app, sign(noSub)), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, sign(accessClaims(randomUUID(), randomUUID()))), 401, 'UNAUTHENTICATED')
    const future = nowSeconds() + 3600
    isError(t, await me(app, sign(accessClaims(user.id, user.sessionId, { nbf: future }))), 401, 'UNAUTHENTICATED')
  })

  t.test('X-Session-Id must be a UUID', async t => {
    const body = isError(t, await me(app, user.token, { 'x-session-id': 'not-a-uuid' }), 400, 'VALIDATION_FAILED')
    t.match(body.message, /X-Session-Id/)
    isError(t, await me(app, user.token, { 'x-session-id': '' }), 400, 'VALIDATION_FAILED')
    const ok = await me(app, user.token, { 'x-session-id': randomUUID() })
    t.equal(ok.statusCode, 200, ok.body)
  })
})

t.test('JWT_PUBLIC_KEY mode', async t => {
  t.test('RSA: outside RS256 tokens are accepted and their users provisioned', async t => {
    const { publicPem, privateKey } = rsaKeyPair()
    const app = await build(t, { JWT_SECRET: '', JWT_PUBLIC_KEY: publicPem })
    t.equal(app.config.JWT_SECRET, undefined, 'an empty JWT_SECRET counts as unset')
    t.equal(app.signAccessToken, undefined, 'we do not sign in this mode')

    const sub = randomUUID()
    const iat = nowSeconds()
    const token = signJwt({ sub, email: 'Outside.User@Example.com', iat, exp: iat + 600 }, { alg: 'RS256', privateKey })
    const res = await me(app, token)
    t.equal(res.statusCode, 200, res.body)
    t.strictSame(res.json(), { id: sub, email: 'outside.user@example.com', permissions: ['file.read', 'file.write'] })
    t.equal((await me(app, token)).statusCode, 200, 'a second call (user known) works')

    // the provisioned user is real: it can own a workspace
    const ws = await app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${token}` }, payload: { name: 'outside' } })
    t.equal(ws.statusCode, 201, ws.body)
    t.match(ws.json(), { ownerId: sub, role: 'owner', revision: 0 })

    // permissions in the token are honoured; a token without an email gets a placeholder one
    const sub2 = randomUUID()
    const readOnly = signJwt({ sub: sub2, permissions: ['file.read'], iat, exp: iat + 600 }, { alg: 'RS256', privateKey })
    const res2 = await me(app, readOnly)
    t.equal(res2.statusCode, 200, res2.body)
    t.strictSame(res2.json(), { id: sub2, email: `${sub2}@external.invalid`, permissions: ['file.read'] })

    // another outside user whose email is already taken still gets an account (placeholder email)
    const sub3 = randomUUID()
    const sameEmail = signJwt({ sub: sub3, email: 'outside.user@example.com', iat, exp: iat + 600 }, { alg: 'RS256', privateKey })
    const res3 = await me(app, sameEmail)
    t.equal(res3.statusCode, 200, res3.body)
    t.strictSame(res3.json(), { id: sub3, email: `${sub3}@external.invalid`, permissions: ['file.read', 'file.write'] })
    const ws3 = await app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${sameEmail}` }, payload: { name: 'third' } })
    t.equal(ws3.statusCode, 201, ws3.body)
    t.equal((await me(app, token)).json<{ email: string }>().email, 'outside.user@example.com', 'the first user keeps the address')

    // the same claims, attacks on the algorithm
    const claims = { sub, iat, exp: iat + 600 }
    isError(t, await me(app, signJwt(claims, { alg: 'HS256', secret: publicPem })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'HS256', secret: publicPem.trim() })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'HS256', secret: publicPem }, { alg: 'RS256' })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'none' })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'HS256', secret: TEST_SECRET })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'RS256', privateKey: rsaKeyPair().privateKey })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'ES256', privateKey: ecKeyPair().privateKey })), 401, 'UNAUTHENTICATED')
    // the right key, but PS256 rather than the configured RS256
    isError(t, await me(app, signJwt(claims, { alg: 'PS256', privateKey })), 401, 'UNAUTHENTICATED')
    const old = nowSeconds() - 3600
    isError(t, await me(app, signJwt({ sub, iat: old, exp: old + 600 }, { alg: 'RS256', privateKey })), 401, 'TOKEN_EXPIRED')

    // a rejected token provisions no one
    const stranger = randomUUID()
    await me(app, signJwt({ sub: stranger, iat, exp: iat + 600 }, { alg: 'HS256', secret: publicPem }))
    const row = await app.db.selectFrom('users').select('id').where('id', '=', stranger).executeTakeFirst()
    t.equal(row, undefined)

    // accounts live at the identity provider
    isError(t, await login(app, 'outside.user@example.com'), 403, 'FORBIDDEN')
    isError(t, await register(app, newEmail()), 403, 'FORBIDDEN')
    isError(t, await refresh(app, 'anything'), 403, 'FORBIDDEN')
  })

  t.test('EC: ES256 tokens are accepted, RS256 ones are not', async t => {
    const { publicPem, privateKey } = ecKeyPair()
    // a PEM passed with literal \n (as in a one-line env file) is accepted too
    const app = await build(t, { JWT_SECRET: '', JWT_PUBLIC_KEY: publicPem.trim().replace(/\n/g, '\\n') })
    const sub = randomUUID()
    const iat = nowSeconds()
    const sid = randomUUID()
    const token = signJwt({ sub, sid, email: 'ec@example.com', iat, exp: iat + 600 }, { alg: 'ES256', privateKey })
    const res = await me(app, token)
    t.equal(res.statusCode, 200, res.body)
    t.strictSame(res.json(), { id: sub, email: 'ec@example.com', permissions: ['file.read', 'file.write'] })

    const claims = { sub, iat, exp: iat + 600 }
    isError(t, await me(app, signJwt(claims, { alg: 'RS256', privateKey: rsaKeyPair().privateKey })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'ES256', privateKey: ecKeyPair().privateKey })), 401, 'UNAUTHENTICATED')
    // the right key, but PS256 rather than the configured RS256
    isError(t, await me(app, signJwt(claims, { alg: 'PS256', privateKey })), 401, 'UNAUTHENTICATED')
    isError(t, await me(app, signJwt(claims, { alg: 'HS256', secret: publicPem })), 401, 'UNAUTHENTICATED')
    isError(t, await login(app, 'ec@example.com'), 403, 'FORBIDDEN')
  })
})

t.test('tokens, secrets and passwords never reach the log', async t => {
  const databaseUrl = await createTestDatabase(t)
  const child = spawnSync(process.execPath, [...TS_IMPORT, join(ROOT_DIR, 'test/fixtures/auth-log-child.ts')], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(child.status, 0, child.stderr)
  const marker = /^SECRETS (.*)$/m.exec(child.stderr)
  const secrets = JSON.parse(marker?.[1] ?? '[]') as string[]
  t.equal(secrets.length, 10, 'the child reported what it handled')
  t.ok(secrets.every(s => s.length > 20), 'every secret is real')
  const lines = child.stdout.split('\n').filter(l => l.trim() !== '')
  t.ok(lines.length >= 20, `the log was written (${lines.length} lines)`)
  const entries = lines.map(l => JSON.parse(l) as { msg?: string, req?: { url?: string } })
  t.ok(entries.some(e => e.msg === 'incoming request' && e.req?.url === '/v1/auth/login'), 'requests are logged')
  t.ok(entries.some(e => e.msg === 'request rejected'), 'rejections are logged')
  for (const secret of secrets) {
    t.notOk(child.stdout.includes(secret), `not in the log: ${secret.slice(0, 12)}…`)
    // nor one JWT segment of it (a payload or a signature alone is still a leak)
    for (const part of secret.split('.').filter(p => p.length > 20)) t.notOk(child.stdout.includes(part))
  }
})

t.test('a token without file permissions: 404 for a workspace the caller cannot see, 403 for one they can', async t => {
  const app = await build(t)
  const owner = await registerUser(app)
  const ws = await createWorkspace(app, owner)
  const stranger = await registerUser(app)
  const bare = (id: string, sid: string): string => signJwt(accessClaims(id, sid, { permissions: [] }), { alg: 'HS256', secret: TEST_SECRET })
  const get = async (token: string, url: string): Promise<Res> => await request(app, 'GET', url, { token })
  for (const url of [`/v1/workspaces/${ws}/files/a.txt`, `/v1/workspaces/${ws}/tree`, `/v1/workspaces/${ws}/changes`, `/v1/workspaces/${randomUUID()}/files/a.txt`]) {
    isError(t, await get(bare(stranger.id, stranger.sessionId), url), 404, 'WORKSPACE_NOT_FOUND')
  }
  const put = await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/a.txt`, headers: { authorization: `Bearer ${bare(stranger.id, stranger.sessionId)}` }, payload: { content: 'x' } })
  isError(t, put, 404, 'WORKSPACE_NOT_FOUND')
  for (const url of [`/v1/workspaces/${ws}/files/a.txt`, `/v1/workspaces/${ws}/tree`, `/v1/workspaces/${ws}/changes`]) {
    isError(t, await get(bare(owner.id, owner.sessionId), url), 403, 'FORBIDDEN')
  }
})

t.test('a valid token for a user that does not exist cannot create a workspace: 401, nothing created', async t => {
  const app = await build(t)
  const ghost = signJwt(accessClaims(randomUUID(), randomUUID()), { alg: 'HS256', secret: TEST_SECRET })
  const res = await app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${ghost}` }, payload: { name: 'w' } })
  isError(t, res, 401, 'UNAUTHENTICATED')
  const list = await app.inject({ url: '/v1/workspaces', headers: { authorization: `Bearer ${ghost}` } })
  t.same(list.json<{ items: unknown[] }>().items, [], 'no workspace')
})
