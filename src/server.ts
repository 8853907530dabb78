import cluster from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Config } from './core/config.js'
import { buildApp } from './app.js'
import { runPrimary } from './cluster.js'

const GRACE_MS = 10_000

/**
 * Starts the server from the environment; SIGTERM/SIGINT close it gracefully. With WORKERS > 1
 * this process becomes the primary of a cluster (src/cluster.ts) and each worker runs this file
 * again as a full instance.
 */
async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
    if (config.WORKERS > 1 && (config.DATABASE_URL === undefined || config.REDIS_URL === undefined)) {
      throw new ConfigError('invalid configuration: WORKERS > 1 needs DATABASE_URL and REDIS_URL (the embedded database and the in-process event bus serve one process)')
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  if (config.WORKERS > 1 && cluster.isPrimary) {
    runPrimary({ workers: config.WORKERS, graceMs: GRACE_MS })
    return
  }
  // A worker leaves SIGINT to its primary, which turns it into one SIGTERM per worker.
  if (cluster.isWorker) process.on('SIGINT', () => {})
  const app = await buildApp(config)
  closeWithGrace({ delay: GRACE_MS, skip: cluster.isWorker ? ['SIGINT'] : [] }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'closing')
    await app.close()
  })
  await app.listen({ port: config.PORT, host: config.HOST })
}

await main()
