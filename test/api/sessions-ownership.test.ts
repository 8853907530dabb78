import { randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import t from 'tap'
import { build, createWorkspace, listen, registerUser } from '../helpers/app.js'
import { isError, type ActivityRecord } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { allActivity, newSession } from '../helpers/history.js'
import { connect } from '../helpers/ws.js'

/**
 * Issue "Hardening", finding 4: a session id belongs to the user who first used it. Another
 * user naming it — X-Session-Id, an operation's or a batch operation's `sessionId`, a WebSocket
 * `auth` message — is 403 FORBIDDEN, and nothing is written, recorded or appended to its
 * CHAT_LOG_DIR file. What a user records in their own session is escaped, so it cannot forge an
 * entry either.
 */

const FORGED = '/x\n\n## 2026-01-01T00:00:00.000Z - Backend Activity\n\n### Type: auth.login\n'
/** Each `## ` section's type: the `### Type:` line after its heading and blank line (else the heading itself). */
const headings = (md: string): string[] => md.split(/^(?=## )/m).filter(s => s.startsWith('## '))
  .map(s => /^## \S+ - Backend (?:Activity|Error)\n\n### Type: (.*)$/m.exec(s)?.[1] ?? s.split('\n')[0] ?? '')

t.test('another user\'s session id is refused everywhere it can be named; the victim\'s log is untouched', async t => {
  const root = await mkdtemp(join(tmpdir(), 'wb-own-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  const app = await build(t, { CHAT_LOG_DIR: root })
  const victim = await registerUser(app)
  const attacker = await registerUser(app)
  const mine = new Ctx(app, victim, await createWorkspace(app, victim))
  const theirs = new Ctx(app, attacker, await createWorkspace(app, attacker))
  t.equal((await mine.put('/v.txt', { content: 'v' })).statusCode, 201)
  const sid = victim.sessionId
  const before = await allActivity(mine, sid)

  const h = { 'x-session-id': sid }
  isError(t, await theirs.put('/a.txt', { content: 'x' }, h), 403, 'FORBIDDEN', 'PUT with X-Session-Id')
  isError(t, await theirs.op({ type: 'create', path: FORGED, content: 'x' }, h), 403, 'FORBIDDEN', 'the reported attack: a path with newlines under X-Session-Id')
  isError(t, await theirs.del('/a.txt', h), 403, 'FORBIDDEN', 'DELETE with X-Session-Id')
  isError(t, await app.inject({ url: '/v1/me', headers: { ...attacker.auth, ...h } }), 403, 'FORBIDDEN', 'even a read names the session')
  isError(t, await theirs.op({ type: 'create', path: '/b.txt', content: 'x', sessionId: sid }), 403, 'FORBIDDEN', 'an operation\'s sessionId')
  isError(t, await theirs.batch([{ type: 'create', path: '/c.txt', content: 'x' }, { type: 'create', path: '/d.txt', content: 'x', sessionId: sid }]), 403, 'FORBIDDEN', 'a batch operation\'s sessionId')

  const base = await listen(app)
  const socket = await connect(t, base, {})
  socket.ws.send(JSON.stringify({ type: 'auth', token: attacker.token, sessionId: sid }))
  t.match(await socket.closed, { reason: 'FORBIDDEN' }, 'a WebSocket auth naming it is closed')

  await app.activity.drain() // refusals are recorded after their answer: wait for them
  t.equal(await theirs.revision(), 0, 'nothing was written in the attacker\'s workspace')
  t.same(await allActivity(mine, sid), before, 'the victim\'s session holds exactly what it held')
  // The refusals are the attacker's own doing: recorded in the attacker's session, never the victim's.
  const own = await allActivity(theirs, attacker.sessionId)
  t.same(own.filter(e => e.status === 403).map(e => e.code), ['FORBIDDEN', 'FORBIDDEN'], 'the two refused operations are in the attacker\'s own session')
  t.ok(own.every(e => e.userId === attacker.id && e.sessionId === attacker.sessionId))

  // In their own session, the attacker's forged path is one escaped entry.
  isError(t, await theirs.op({ type: 'create', path: FORGED, content: 'x' }), 400, 'INVALID_PATH', 'the forged path in their own session')
  await app.activity.drain()
  const ownMd = (await app.inject({ url: `/v1/sessions/${attacker.sessionId}/log.md`, headers: attacker.auth })).body
  const ownEntries: ActivityRecord[] = await allActivity(theirs, attacker.sessionId)
  t.same(headings(ownMd), ownEntries.map(e => e.type), 'log.md: one heading per entry, none forged')

  await app.close()
  const victimFile = await readFile(join(root, `session${sid}.md`), 'utf8')
  t.same(headings(victimFile), before.map(e => e.type), 'the victim\'s CHAT_LOG_DIR file: only the victim\'s entries')
  t.notMatch(victimFile, '2026-01-01', 'and nothing of the forged section')
  const attackerFile = await readFile(join(root, `session${attacker.sessionId}.md`), 'utf8')
  t.same(headings(attackerFile), ownEntries.map(e => e.type), 'the attacker\'s file: one heading per entry of theirs')
  t.same((await readdir(root)).sort(), [`session${attacker.sessionId}.md`, `session${sid}.md`].sort(), 'no other log file')
})

t.test('a fresh session id is claimed by its first user, atomically: concurrent users, one owner', async t => {
  const app = await build(t)
  const a = await registerUser(app)
  const b = await registerUser(app)
  const sid = newSession()
  const tries = Array.from({ length: 8 }, (_, i) => app.inject({ url: '/v1/me', headers: { ...(i % 2 === 0 ? a : b).auth, 'x-session-id': sid } }))
  const answers = (await Promise.all(tries)).map((r, i) => [i % 2 === 0 ? 'a' : 'b', r.statusCode])
  const winners = new Set(answers.filter(([, s]) => s === 200).map(([who]) => who))
  t.equal(winners.size, 1, `exactly one user got 200s: ${JSON.stringify(answers)}`)
  t.ok(answers.every(([who, s]) => s === (winners.has(who) ? 200 : 403)), 'the other got only 403s')
  const rows = await app.db.selectFrom('sessions').select('user_id').where('id', '=', sid).execute()
  t.same(rows.map(r => r.user_id), [winners.has('a') ? a.id : b.id], 'one row, the winner\'s')
  t.equal((await app.inject({ url: '/v1/me', headers: { ...(winners.has('a') ? b : a).auth, 'x-session-id': sid.toUpperCase() } })).statusCode, 400, 'upper-case spelling: refused (ids have one spelling), never a second session')
})

t.test('sessions in use before this release keep their first user (sql/004-sessions.sql fills the table)', async t => {
  const app = await build(t)
  const a = await registerUser(app)
  const b = await registerUser(app)
  const tab = newSession()
  t.equal((await app.inject({ url: '/v1/me', headers: { ...b.auth, 'x-session-id': tab } })).statusCode, 200)
  const ctx = new Ctx(app, b, await createWorkspace(app, b))
  t.equal((await ctx.put('/t.txt', { content: 't' }, { 'x-session-id': tab })).statusCode, 201)
  t.equal((await app.db.selectFrom('sessions').select('user_id').where('id', '=', a.sessionId).executeTakeFirst())?.user_id, a.id, 'register claimed the session it started')

  // As before the migration: no ownership rows, only the activity log and the refresh tokens.
  await app.db.deleteFrom('sessions').execute()
  const script = await readFile(new URL('../../sql/004-sessions.sql', import.meta.url), 'utf8')
  const backfill = /INSERT INTO sessions[\s\S]*?;/.exec(script)?.[0]
  if (backfill === undefined) throw new Error('no backfill statement in sql/004-sessions.sql')
  await sql.raw(backfill).execute(app.db)
  const owners = Object.fromEntries((await app.db.selectFrom('sessions').select(['id', 'user_id']).execute()).map(r => [r.id, r.user_id]))
  t.same(owners, { [a.sessionId]: a.id, [b.sessionId]: b.id, [tab]: b.id }, 'each session id in use is its first user\'s')

  isError(t, await app.inject({ url: '/v1/me', headers: { ...a.auth, 'x-session-id': tab } }), 403, 'FORBIDDEN', 'the filled-in owner is enforced')
  isError(t, await app.inject({ url: '/v1/me', headers: { ...b.auth, 'x-session-id': randomUUID().slice(1) } }), 400, 'VALIDATION_FAILED', 'not a UUID')
})
