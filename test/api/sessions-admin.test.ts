import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createTestDatabase, ROOT_DIR, TS_IMPORT, TEST_SECRET, registerUser, type TestUser } from '../helpers/app.js'
import { isError } from '../helpers/http.js'
import { nowSeconds, rsaKeyPair, signJwt } from '../helpers/jwt.js'
import { runAdminCommand } from '../../src/accounts/admin.js'

/**
 * Issue "Hardening", finding 8: admin is never granted by registering an address. ADMIN_EMAILS
 * is no longer honoured; an operator grants `admin` to an existing account with
 * `npm run admin -- grant <email | user id>` (and revokes it the same way), run here as the real
 * process against the test database. GET /v1/stats reads the stored permission on every call.
 */

interface Run { code: number | null, stdout: string, stderr: string }

/** `node src/admin-cli.ts …` (through test/loader) on the test database, as an operator would run it. */
async function admin (url: string, ...args: string[]): Promise<Run> {
  return await new Promise(resolve => {
    execFile(process.execPath, [...TS_IMPORT, join(ROOT_DIR, 'src/admin-cli.ts'), ...args], {
      cwd: ROOT_DIR,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' },
      timeout: 60_000
    }, (err, stdout, stderr) => { resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }) })
  })
}

const stats = async (app: FastifyInstance, user: TestUser): Promise<number> => (await app.inject({ url: '/v1/stats', headers: user.auth })).statusCode
const permissions = async (app: FastifyInstance, user: TestUser): Promise<string[]> =>
  (await app.db.selectFrom('users').select('permissions').where('id', '=', user.id).executeTakeFirstOrThrow()).permissions

t.test('the reported case: registering an address listed in ADMIN_EMAILS grants nothing', async t => {
  const app = await build(t, { ADMIN_EMAILS: 'admin@example.com' })
  const squatter = await registerUser(app, 'Admin@Example.com')
  isError(t, await app.inject({ url: '/v1/stats', headers: squatter.auth }), 403, 'FORBIDDEN', 'the first to register the address')
  t.same(await permissions(app, squatter), ['file.read', 'file.write'], 'no admin stored')
  t.notOk((await app.inject({ url: '/v1/me', headers: squatter.auth })).json<{ permissions: string[] }>().permissions.includes('admin'))
})

t.test('npm run admin: grant and revoke an existing account, as a real process; an address without an account is refused', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const user = await registerUser(app)
  const bystander = await registerUser(app)
  t.equal(await stats(app, user), 403, 'before: 403')
  const users = await app.db.selectFrom('users').selectAll().orderBy('id').execute()

  const [granted, unknown] = await Promise.all([admin(url, 'grant', user.email.toUpperCase()), admin(url, 'grant', 'nobody-yet@example.com')])
  t.equal(granted.code, 0, granted.stderr)
  t.match(granted.stdout, `granted admin to ${user.email}`)
  t.equal(await stats(app, user), 200, 'after the grant: 200, with the same token (read on every call)')
  t.equal(await stats(app, bystander), 403, 'nobody else')
  t.same(await permissions(app, user), ['file.read', 'file.write', 'admin'])
  t.equal(unknown.code, 1, 'an address without an account: exit 1')
  t.match(unknown.stderr, /no account "nobody-yet@example.com"/)
  const after = await app.db.selectFrom('users').selectAll().orderBy('id').execute()
  t.same(after.filter(u => u.id !== user.id), users.filter(u => u.id !== user.id), 'no account created, no other account changed')
  t.equal(await stats(app, await registerUser(app, 'nobody-yet@example.com')), 403, 'registering that address afterwards grants nothing')

  const revoked = await admin(url, 'revoke', user.email)
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, 'revoked admin')
  t.equal(await stats(app, user), 403, 'after the revoke: 403 at once, though the token was issued before')
  t.same(await permissions(app, user), ['file.read', 'file.write'])
})

t.test('the admin commands: by id, twice, list, usage', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const before = await app.db.selectFrom('users').selectAll().orderBy('id').execute()
  t.match(await runAdminCommand(app.db, ['promote', user.email]), { code: 2, out: /^usage: npm run admin -- grant/ }, 'an unknown command')
  t.match(await runAdminCommand(app.db, ['grant']), { code: 2 }, 'no account named')
  t.match(await runAdminCommand(app.db, ['grant', user.email, 'extra']), { code: 2 }, 'too many arguments')
  t.match(await runAdminCommand(app.db, ['revoke', user.email]), { code: 0, out: /is not an admin/ }, 'revoking a non-admin changes nothing')
  t.same(await app.db.selectFrom('users').selectAll().orderBy('id').execute(), before, 'nothing changed so far')
  t.match(await runAdminCommand(app.db, ['grant', user.id.toUpperCase()]), { code: 0, out: /granted admin/ }, 'by user id')
  t.match(await runAdminCommand(app.db, ['grant', ` ${user.email} `]), { code: 0, out: /already an admin/ }, 'twice: nothing more')
  t.same(await permissions(app, user), ['file.read', 'file.write', 'admin'], 'admin listed once')
  t.same(await runAdminCommand(app.db, ['list']), { code: 0, out: `${user.id} ${user.email}\n` }, 'list: the one admin')
})

t.test('JWT_PUBLIC_KEY: the provider\'s admin counts for its tokens, and is not stored', async t => {
  const { publicPem, privateKey } = rsaKeyPair()
  const app = await build(t, { JWT_SECRET: '', JWT_PUBLIC_KEY: publicPem })
  const sub = randomUUID()
  const iat = nowSeconds()
  const token = (permissions: string[]): string => signJwt({ sub, sid: randomUUID(), permissions, iat, exp: iat + 600 }, { alg: 'RS256', privateKey })
  const get = async (tok: string): Promise<number> => (await app.inject({ url: '/v1/stats', headers: { authorization: `Bearer ${tok}` } })).statusCode
  t.equal(await get(token(['file.read', 'admin'])), 200, 'a token that says admin')
  const stored = await app.db.selectFrom('users').select('permissions').where('id', '=', sub).executeTakeFirstOrThrow()
  t.same(stored.permissions, ['file.read'], 'provisioned without it')
  t.equal(await get(token(['file.read'])), 403, 'the provider took it back: its next token is refused')
})
