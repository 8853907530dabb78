import { randomUUID } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, createWorkspace, PASSWORD, registerUser, type TestUser } from '../helpers/app.js'
import { isError } from '../helpers/http.js'
import { newSession } from '../helpers/history.js'
import { prune } from '../../src/mutations/retention.js'
import { createMutationPipeline, type MutationSpec } from '../../src/mutations/pipeline.js'
import { errors } from '../../src/core/errors.js'

/**
 * Issue "Hardening", finding 5: refused requests cost no disk. A user may start at most
 * MAX_NEW_SESSIONS_PER_WINDOW new session ids per RATE_LIMIT_WINDOW_MS (past it 429
 * RATE_LIMITED); 429 and 503 answers are not recorded in the activity log (nor in CHAT_LOG_DIR);
 * activity older than ACTIVITY_RETENTION is pruned by the retention job, in batches.
 */

const activityRows = async (app: FastifyInstance, userId: string): Promise<Array<{ session_id: string, status: number }>> =>
  await app.db.selectFrom('activity').select(['session_id', 'status']).where('user_id', '=', userId).orderBy('id').execute()
const sessionRows = async (app: FastifyInstance, userId: string): Promise<number> =>
  (await app.db.selectFrom('sessions').select('id').where('user_id', '=', userId).execute()).length
const me = async (app: FastifyInstance, user: TestUser, sid?: string): Promise<LightMyRequestResponse> =>
  await app.inject({ url: '/v1/me', headers: { ...user.auth, ...(sid === undefined ? {} : { 'x-session-id': sid }) } })

t.test('MAX_NEW_SESSIONS_PER_WINDOW: the bound\'s last session is accepted, one past it is 429 and changes nothing', async t => {
  const app = await build(t, { MAX_NEW_SESSIONS_PER_WINDOW: '3' })
  const user = await registerUser(app) // session 1: the one register started
  const other = await registerUser(app)
  const second = newSession()
  const third = newSession()
  t.equal((await me(app, user, second)).statusCode, 200, 'session 2')
  t.equal((await me(app, user, third)).statusCode, 200, 'session 3: at the bound')
  await app.activity.drain()
  const beforeActivity = await activityRows(app, user.id)

  const past = newSession()
  const refused = await me(app, user, past)
  const body = isError(t, refused, 429, 'RATE_LIMITED', 'session 4: past the bound')
  t.match(body, { details: { limit: 3, windowMs: 60_000 } })
  const retryAfter = Number(refused.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} s`)
  const ctx = await createWorkspace(app, user)
  isError(t, await app.inject({ method: 'DELETE', url: `/v1/workspaces/${ctx}/files/x.txt`, headers: { ...user.auth, 'x-session-id': past } }), 429, 'RATE_LIMITED', 'a mutation under it too')
  isError(t, await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password: PASSWORD } }), 429, 'RATE_LIMITED', 'a login starts a session: refused too')

  await app.activity.drain()
  t.equal(await sessionRows(app, user.id), 3, 'still three sessions')
  t.same((await activityRows(app, user.id)).filter(r => r.session_id === past), [], 'nothing recorded under the refused id')
  t.same(await activityRows(app, user.id), beforeActivity, 'no activity entry for any refusal')
  t.equal((await me(app, user, second)).statusCode, 200, 'a session already started is still usable')
  t.equal((await me(app, user)).statusCode, 200, 'and the token\'s own')
  t.equal((await me(app, other, newSession())).statusCode, 200, 'another user has a bound of their own')

  // The window slides: once the oldest sessions are older than RATE_LIMIT_WINDOW_MS, there is room again.
  await sql`UPDATE sessions SET created_at = now() - interval '61 seconds' WHERE user_id = ${user.id} AND id <> ${third}`.execute(app.db)
  t.equal((await me(app, user, past)).statusCode, 200, 'two sessions left the window: a new one is accepted')
  t.equal((await me(app, user, newSession())).statusCode, 200, 'and one more: at the bound again')
  isError(t, await me(app, user, newSession()), 429, 'RATE_LIMITED', 'past it again')
})

t.test('the reported flood: fresh X-Session-Ids past the limits cost neither activity rows nor log files', async t => {
  const root = await mkdtemp(join(tmpdir(), 'wb-flood-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  const app = await build(t, { CHAT_LOG_DIR: root, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: '12', MAX_NEW_SESSIONS_PER_WINDOW: '5' })
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  const del = async (sid: string): Promise<number> =>
    (await app.inject({ method: 'DELETE', url: `/v1/workspaces/${ws}/files/nope.txt`, headers: { ...user.auth, 'x-session-id': sid } })).statusCode

  // Fresh session ids: four fit the bound (register started the fifth); the rest are 429.
  const fresh: number[] = []
  for (let i = 0; i < 8; i++) fresh.push(await del(newSession()))
  t.same(fresh, [404, 404, 404, 404, 429, 429, 429, 429], 'four deletes of a missing file, then the new-session bound')
  // One session id over and over: past RATE_LIMIT_MAX the request limit answers 429.
  const reused: number[] = []
  for (let i = 0; i < 12; i++) reused.push(await del(user.sessionId))
  t.ok(reused.includes(429), `the request limit refused some: ${reused.join(' ')}`)
  t.ok(reused.every(s => s === 404 || s === 429), 'every answer a 404 or a 429')

  const answered = [...fresh, ...reused].filter(s => s !== 429).length
  await app.activity.drain() // failures are recorded after their answer: wait for them
  const rows = await activityRows(app, user.id)
  t.equal(rows.length, 1 + answered, `activity: the register and the ${answered} answered deletes, nothing for the ${fresh.length + reused.length - answered} refusals`)
  t.notOk(rows.some(r => r.status === 429), 'no 429 entry')
  t.equal(await sessionRows(app, user.id), 5, 'five sessions: the bound')
  await app.close()
  t.equal((await readdir(root)).length, 5, 'five CHAT_LOG_DIR files, one per session with entries')
})

t.test('ACTIVITY_RETENTION: entries older than it are pruned in batches; one exactly at the cutoff is kept', async t => {
  const app = await build(t, { ACTIVITY_RETENTION: '1h', RETENTION_INTERVAL_MS: '0' })
  t.equal(app.config.activityRetentionMs, 3_600_000)
  const user = await registerUser(app)
  const sid = user.sessionId
  const now = new Date()
  const cutoff = new Date(now.getTime() - 3_600_000)
  // 2,500 old entries (over two batches of 1,000), one exactly at the cutoff, one a millisecond past it.
  await sql`INSERT INTO activity (session_id, user_id, at, type, status)
            SELECT ${sid}, ${user.id}, ${cutoff}::timestamptz - interval '1 day' - g * interval '1 second', 'file.write', 200
              FROM generate_series(1, 2500) g`.execute(app.db)
  await sql`INSERT INTO activity (session_id, user_id, at, type, status) VALUES
            (${sid}, ${user.id}, ${cutoff}, 'at.cutoff', 200),
            (${sid}, ${user.id}, ${cutoff}::timestamptz - interval '1 millisecond', 'past.cutoff', 200)`.execute(app.db)
  const before = (await activityRows(app, user.id)).length
  t.equal(before, 2503, 'register + 2,500 old + the two at the edge')

  const result = await prune(app.db, { changeRetentionMs: 0, activityRetentionMs: app.config.activityRetentionMs }, now)
  t.equal(result.activity, 2501, 'the 2,500 old ones and the one a millisecond past the cutoff')
  const left = await app.db.selectFrom('activity').select('type').where('user_id', '=', user.id).orderBy('id').execute()
  t.same(left.map(r => r.type), ['auth.register', 'at.cutoff'], 'kept: the recent register and the entry exactly at the cutoff')
  t.equal((await prune(app.db, { changeRetentionMs: 0, activityRetentionMs: 3_600_000 }, now)).activity, 0, 'a second pass finds nothing more')
  await sql`INSERT INTO activity (session_id, user_id, at, type, status) VALUES (${sid}, ${user.id}, now() - interval '2 days', 'old.again', 200)`.execute(app.db)
  t.ok((await app.prune()).activity >= 1, 'the job\'s own pass (app.prune) applies ACTIVITY_RETENTION too')
  const types = (await app.db.selectFrom('activity').select('type').where('user_id', '=', user.id).execute()).map(r => r.type)
  t.ok(!types.includes('old.again') && types.includes('auth.register'), `it pruned the old entry and kept the register (${types.length} entries left)`)
  t.equal((await me(app, user)).statusCode, 200, 'the session is still its user\'s')

  const forever = await prune(app.db, { changeRetentionMs: 0, activityRetentionMs: 0 }, new Date(now.getTime() + 10 * 86_400_000))
  t.equal(forever.activity, 0, 'ACTIVITY_RETENTION=0 keeps activity forever')
})

t.test('a 429 or 503 is not recorded, whether it comes from the mutation or refuses it before it runs', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const actor = { userId: user.id, sessionId: user.sessionId, permissions: ['file.read', 'file.write'] }
  const pipeline = createMutationPipeline({ db: app.db, activity: app.activity, publisher: { publishChanges: async () => {} } })
  const failing = (err: Error): MutationSpec<never, never> => ({
    type: 'file.write',
    workspaceId: randomUUID(),
    params: {},
    run: async () => { throw err },
    respond: () => { throw err },
    changes: () => [],
    revision: () => 0
  })
  const refusals = [errors.unavailable('overloaded'), errors.rateLimited(1, 1000, 1), errors.tooManySessions(1, 1000, 1)]
  for (const err of refusals) {
    await t.rejects(pipeline.run(actor, failing(err), {}), err, `${err.statusCode} ${err.code} thrown`)
    pipeline.rejected(actor, { type: 'file.write', workspaceId: null, path: '/p' }, errors.unavailable('overloaded'), 1)
  }
  await app.activity.drain()
  const before = (await activityRows(app, user.id)).map(r => r.status)
  t.same(before, [201], 'only the register: none of the 429s and 503s')
  // One past them: an ordinary failure is still recorded, both ways.
  await t.rejects(pipeline.run(actor, failing(errors.fileExists('/p')), {}), '409 thrown')
  pipeline.rejected(actor, { type: 'file.write', workspaceId: null, path: '/p' }, errors.validation('bad'), 1)
  await app.activity.drain()
  t.same((await activityRows(app, user.id)).map(r => r.status), [201, 409, 400], 'a 409 and a 400 are')
})
