import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './core/config.js'

/** `npm run migrate`: applies pending migrations (the database plugin does it at start) and exits. */
try {
  const app = await buildApp(loadConfig())
  await app.ready()
  await app.close()
  process.stdout.write('migrations are up to date\n')
} catch (err) {
  process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`)
  process.exitCode = 1
}
