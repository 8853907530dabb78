import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig } from './config.js'
import { buildApp } from './app.js'

/** Starts the server from the environment; SIGTERM/SIGINT close it gracefully. */
async function main (): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  const app = await buildApp(config)
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'closing')
    await app.close()
  })
  await app.listen({ port: config.PORT, host: config.HOST })
}

await main()
