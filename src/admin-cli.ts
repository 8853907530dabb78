import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './core/config.js'
import { runAdminCommand } from './accounts/admin.js'

/**
 * `npm run admin -- grant|revoke <email | user id>`, `npm run admin -- list`: grants or revokes
 * the `admin` permission of an existing account (src/accounts/admin.ts). Like `npm run migrate`
 * it opens the database the server would — DATABASE_URL, else the embedded one in DATA_DIR (stop
 * the server first: an embedded database has one process at a time) — applying pending
 * migrations, runs the command and exits: 0 done, 1 refused (no such account), 2 usage.
 */
let exitCode = 1
try {
  const app = await buildApp(loadConfig({ LOG_LEVEL: 'warn', ...process.env }))
  await app.ready()
  try {
    const { code, out } = await runAdminCommand(app.db, process.argv.slice(2))
    ;(code === 0 ? process.stdout : process.stderr).write(out)
    exitCode = code
  } finally {
    await app.close()
  }
} catch (err) {
  process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`)
}
// Set last: closing the embedded database (PGlite's runtime) resets process.exitCode to 0.
process.exitCode = exitCode
