import t from 'tap'
import WebSocket from 'ws'
import { WorkbenchClient, type LiveEvent, type TokenSet } from '../../client/src/index.js'
import { build, listen, PASSWORD, sleep, TEST_SECRET } from '../helpers/app.js'
import { accessClaims, nowSeconds, signJwt } from '../helpers/jwt.js'

/**
 * Tokens: one refresh however many calls find the access token expired, two clients (two tabs)
 * refreshing with the same refresh token both going on, a socket whose token expires resuming,
 * and logout.
 */

const email = (): string => `sdk-auth-${Math.random().toString(36).slice(2)}@example.com`

/** An access token of ours for this user and session that expired `ago` seconds ago (or expires in -ago). */
function expiredToken (userId: string, sessionId: string, ago = 10): string {
  const now = nowSeconds()
  return signJwt(accessClaims(userId, sessionId, { iat: now - 900, exp: now - ago }), { alg: 'HS256', secret: TEST_SECRET })
}

/** A fetch counting the refresh requests and the 401 TOKEN_EXPIRED answers. */
function counting (): { fetch: typeof fetch, refreshes: () => number, expired: () => number } {
  let refreshes = 0
  let expired = 0
  return {
    fetch: async (input, init) => {
      if (String(input).endsWith('/v1/auth/refresh')) refreshes++
      const res = await fetch(input, init)
      if (res.status === 401) {
        const body = await res.clone().json() as { code?: string }
        if (body.code === 'TOKEN_EXPIRED') expired++
      }
      return res
    },
    refreshes: () => refreshes,
    expired: () => expired
  }
}

t.test('tokens', async t => {
  const app = await build(t)
  const base = await listen(app)

  /** A fresh login (its own session and refresh token), as stored tokens with an expired access token. */
  const staleLogin = async (address: string): Promise<TokenSet & { userId: string }> => {
    const c = new WorkbenchClient({ baseUrl: base })
    const result = await c.auth.login({ email: address, password: PASSWORD })
    return { accessToken: expiredToken(result.user.id, result.sessionId), refreshToken: result.refreshToken, sessionId: result.sessionId, userId: result.user.id }
  }

  const address = email()
  const owner = new WorkbenchClient({ baseUrl: base })
  await owner.auth.register({ email: address, password: PASSWORD })
  const ws = await owner.workspaces.create('auth')

  t.test('50 concurrent calls that all find the token expired cause exactly one refresh', async t => {
    const { userId, ...tokens } = await staleLogin(address)
    const counter = counting()
    const changed: Array<TokenSet | null> = []
    const client = new WorkbenchClient({ baseUrl: base, tokens, fetch: counter.fetch, onTokens: t => { changed.push(t) } })
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      if (i % 3 === 0) return (await client.me()).id
      if (i % 3 === 1) return (await client.workspaces.get(ws.id)).ownerId
      return (await client.files.write(ws.id, `/concurrent/${i}.txt`, { content: String(i) })).file.createdBy
    }))
    t.ok(answers.every(a => a === userId), 'every call succeeded, as the user')
    t.equal(counter.refreshes(), 1, 'one refresh request')
    t.equal(client.refreshCount, 1)
    t.ok(counter.expired() >= 1, `the calls did meet TOKEN_EXPIRED (${counter.expired()} times)`)
    t.equal(changed.length, 1, 'the new pair was handed to onTokens once')
    t.not(client.tokens?.refreshToken, tokens.refreshToken, 'the refresh token rotated')
    t.equal(client.tokens?.sessionId, tokens.sessionId, 'a refresh keeps the session')
  })

  t.test('two tabs refreshing with the same refresh token at once both go on, with the same pair', async t => {
    const { userId: _u, ...tokens } = await staleLogin(address)
    const counters = [counting(), counting()]
    const tabs = counters.map(c => new WorkbenchClient({ baseUrl: base, tokens, fetch: c.fetch }))
    const results = await Promise.all(tabs.map(async tab => await Promise.all(Array.from({ length: 10 }, async () => (await tab.me()).email))))
    t.same(results.flat(), Array(20).fill(address), 'every call of both tabs succeeded')
    t.same(counters.map(c => c.refreshes()), [1, 1], 'one refresh per tab')
    t.equal(tabs[0]?.tokens?.refreshToken, tabs[1]?.tokens?.refreshToken, 'the reuse window gave both tabs the same pair')
    t.equal(tabs[0]?.tokens?.accessToken, tabs[1]?.tokens?.accessToken)
    // Both go on with that pair, including its next rotation by one of them.
    t.equal((await tabs[1]?.me())?.email, address)
    await tabs[0]?.refresh()
    t.equal((await tabs[0]?.me())?.email, address)
  })

  t.test('a token known to expire is refreshed before the call, without a 401', async t => {
    const { userId: _u, ...tokens } = await staleLogin(address)
    const counter = counting()
    const client = new WorkbenchClient({ baseUrl: base, tokens: { ...tokens, expiresAt: Date.now() - 1 }, fetch: counter.fetch })
    await Promise.all([client.me(), client.me(), client.workspaces.list()])
    t.equal(counter.refreshes(), 1)
    t.equal(counter.expired(), 0, 'no call was refused')
    t.ok((client.tokens?.expiresAt ?? 0) > Date.now() + 60_000)
  })

  t.test('a refused refresh token logs the client out', async t => {
    const { userId, sessionId } = await staleLogin(address)
    const changed: Array<TokenSet | null> = []
    const client = new WorkbenchClient({
      baseUrl: base,
      tokens: { accessToken: expiredToken(userId, sessionId), refreshToken: 'not-a-token', sessionId },
      onTokens: t => { changed.push(t) }
    })
    const errors = await Promise.all([client.me(), client.me()].map(async p => await p.catch((e: unknown) => e)))
    for (const e of errors) t.match(e, { status: 401, code: 'UNAUTHENTICATED' })
    t.equal(client.tokens, null)
    t.same(changed, [null])
  })

  t.test('a socket whose token expires is closed (4401), refreshes, reconnects and resumes', async t => {
    const login = await staleLogin(address)
    const now = nowSeconds()
    // Valid for two more seconds, and the SDK does not know when it expires: the server closes the socket then.
    const shortLived = signJwt(accessClaims(login.userId, login.sessionId, { iat: now, exp: now + 2 }), { alg: 'HS256', secret: TEST_SECRET })
    const client = new WorkbenchClient({ baseUrl: base, WebSocket, tokens: { accessToken: shortLived, refreshToken: login.refreshToken, sessionId: login.sessionId } })
    t.teardown(() => { client.live.close() })
    const head = (await owner.workspaces.get(ws.id)).revision
    const events: LiveEvent[] = []
    const sub = client.live.subscribe(ws.id, { since: head }, e => { events.push(e) })
    t.equal(await sub.ready, head)
    await owner.files.write(ws.id, '/expiry/before.txt', { content: '1' })
    await sleep(3_000)
    await owner.files.write(ws.id, '/expiry/after.txt', { content: '2' })
    for (let i = 0; i < 100 && events.length < 2; i++) await sleep(50)
    t.same(events.map(e => e.change.path), ['/expiry/before.txt', '/expiry/after.txt'], 'no event lost across the expiry')
    t.same(events.map(e => e.revision), [head + 1, head + 2])
    t.equal(client.live.connections, 2, 'it reconnected once')
    t.equal(client.refreshCount, 1, 'after one refresh')
    t.equal(client.live.status, 'open')
  })

  t.test('a socket whose token is known to expire re-authenticates with the refreshed one and stays open', async t => {
    const login = await staleLogin(address)
    const now = nowSeconds()
    const shortLived = signJwt(accessClaims(login.userId, login.sessionId, { iat: now, exp: now + 3 }), { alg: 'HS256', secret: TEST_SECRET })
    const client = new WorkbenchClient({
      baseUrl: base,
      WebSocket,
      tokens: { accessToken: shortLived, refreshToken: login.refreshToken, sessionId: login.sessionId, expiresAt: (now + 3) * 1000 },
      refreshLeewayMs: 0
    })
    t.teardown(() => { client.live.close() })
    const head = (await owner.workspaces.get(ws.id)).revision
    const events: LiveEvent[] = []
    await client.live.subscribe(ws.id, { since: head }, e => { events.push(e) }).ready
    await sleep(4_500)
    await owner.files.write(ws.id, '/expiry/renewed.txt', { content: '3' })
    for (let i = 0; i < 100 && events.length < 1; i++) await sleep(50)
    t.same(events.map(e => e.change.path), ['/expiry/renewed.txt'])
    t.equal(client.refreshCount, 1, 'refreshed before the expiry')
    t.equal(client.live.connections, 1, 'the same socket throughout: the server took the new token')
  })

  t.test('logout ends the session: the socket closes and the client forgets its tokens', async t => {
    const c = new WorkbenchClient({ baseUrl: base, WebSocket })
    await c.auth.login({ email: address, password: PASSWORD })
    const other = new WorkbenchClient({ baseUrl: base, WebSocket, tokens: c.tokens })
    const sub = other.live.subscribe(ws.id, {}, () => {})
    await sub.ready
    const ended = new Promise(resolve => { sub.options.onError = resolve })
    await c.auth.logout()
    t.equal(c.tokens, null)
    t.match(await ended, { status: 401, code: 'UNAUTHENTICATED' }, 'the same session elsewhere (another tab) is told it ended')
    t.equal(other.live.status, 'closed')
  })
})
