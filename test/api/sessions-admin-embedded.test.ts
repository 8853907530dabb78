import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT_DIR, TS_IMPORT } from '../helpers/app.js'

/**
 * Issue "Hardening", finding 8: `npm run admin` works on the embedded database too (no
 * DATABASE_URL: PGlite in DATA_DIR), as the server would open it. Slow-ish (PGlite starts three
 * times), so on its own; the behaviour itself is tested on PostgreSQL in sessions-admin.test.ts.
 */

interface Run { code: number | null, stdout: string, stderr: string }

async function admin (dataDir: string, ...args: string[]): Promise<Run> {
  return await new Promise(resolve => {
    execFile(process.execPath, [...TS_IMPORT, join(ROOT_DIR, 'src/admin-cli.ts'), ...args], {
      cwd: ROOT_DIR,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test', DATA_DIR: dataDir },
      timeout: 120_000
    }, (err, stdout, stderr) => { resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }) })
  })
}

t.test('npm run admin on the embedded database in DATA_DIR', { timeout: 240_000 }, async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-admin-embedded-'))
  t.teardown(() => { rmSync(dataDir, { recursive: true, force: true }) })
  const email = 'ops@example.com'

  const unknown = await admin(dataDir, 'grant', email)
  t.equal(unknown.code, 1, `no such account yet: exit 1 ${unknown.stderr}`)

  // The account, as registering would leave it (the CLI created and migrated the database).
  const { PGlite } = await import('@electric-sql/pglite')
  const id = randomUUID()
  const db = await PGlite.create(join(dataDir, 'pgdata'))
  await db.query('INSERT INTO users (id, email, password_hash) VALUES ($1, $2, NULL)', [id, email])
  await db.close()

  const granted = await admin(dataDir, 'grant', email)
  t.equal(granted.code, 0, granted.stderr)
  t.match(granted.stdout, `granted admin to ${email} (${id})`)
  const check = await PGlite.create(join(dataDir, 'pgdata'))
  const { rows } = await check.query<{ permissions: string[] }>('SELECT permissions FROM users WHERE id = $1', [id])
  await check.close()
  t.same(rows[0]?.permissions, ['file.read', 'file.write', 'admin'], 'stored in the embedded database')
})
