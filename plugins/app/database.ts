import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'
import pg from 'pg'
import { Kysely, PostgresDialect, type LogEvent, type PostgresCursor, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely'
import type { Database, Db } from '../../src/db/schema.js'
import { preparedName } from '../../src/db/compiled.js'
import { migrate } from '../../src/db/migrate.js'
import { watchConnections } from '../../src/db/watchdog.js'
import type { Metrics } from '../../src/ops/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Kysely over PostgreSQL (DATABASE_URL) or the embedded PGlite in DATA_DIR. */
    db: Db
    /** Pool figures for /metrics and /ready; PGlite has one connection and no pool. */
    dbPool: () => { kind: 'postgres' | 'pglite', total: number, idle: number, waiting: number }
  }
}

// int8 (revisions, sizes) as JS numbers rather than strings: they stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, Number)

/**
 * Opens the database, applies pending migrations from sql/, and decorates `db`.
 * @see https://kysely.dev/docs/dialects
 */
export default fp(async function database (fastify) {
  const { config } = fastify
  if (config.DATABASE_URL !== undefined) {
    await fastify.register(fastifyPostgres, {
      connectionString: config.DATABASE_URL,
      max: config.DB_POOL_MAX,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: config.DB_STATEMENT_TIMEOUT_MS || undefined,
      // The client-side backstop for a server that stops answering altogether.
      query_timeout: config.DB_STATEMENT_TIMEOUT_MS > 0 ? config.DB_STATEMENT_TIMEOUT_MS + 5_000 : undefined,
      application_name: 'workbench-api'
    })
    const pool = fastify.pg.pool
    // An idle client killed by the server (restart, pg_terminate_backend) must not crash the process.
    pool.on('error', err => fastify.log.warn({ err }, 'idle database client failed'))
    // A client in use has no pool listener: its connection lost mid-transaction (the watchdog's
    // pg_terminate_backend, a restart) would be an uncaught 'error' event, ending the process.
    // The query in flight gets the error and the request answers 503; the pool drops the client.
    pool.on('connect', client => { client.on('error', err => { fastify.log.warn({ err }, 'database connection lost') }) })
    const client = await untilUp(() => pool.connect(), config.STARTUP_TIMEOUT_MS, err => {
      fastify.log.warn({ err: (err as Error).message }, 'database not reachable yet; retrying')
    })
    try {
      const applied = await migrate({
        exec: async script => { await client.query(script) },
        query: async (text, params) => (await client.query(text, params)).rows
      })
      if (applied.length > 0) fastify.log.info({ applied }, 'migrations applied')
    } finally {
      client.release()
    }
    // Times every connection's hold (the transaction duration metric) and bounds it by
    // DB_TRANSACTION_TIMEOUT_MS; started after the migrations, which may take long.
    const watchdog = watchConnections(pool, {
      limitMs: config.DB_TRANSACTION_TIMEOUT_MS,
      connectionString: config.DATABASE_URL,
      log: fastify.log,
      onRelease: ms => { fastify.metrics.dbTransaction.observe(ms / 1000) }
    })
    fastify.addHook('onClose', async () => { watchdog.stop() })
    // No db.destroy() on close: the pool belongs to @fastify/postgres, which ends it.
    fastify.decorate('db', new Kysely<Database>({
      dialect: new PostgresDialect({ pool: config.DB_PREPARED_STATEMENTS ? preparing(pool) : pool }),
      log: queryLog(fastify.metrics)
    }))
    fastify.decorate('dbPool', () => ({ kind: 'postgres' as const, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }))
    return
  }

  const dir = join(config.DATA_DIR, 'pgdata')
  await mkdir(dir, { recursive: true })
  // Loaded only in embedded mode: PGlite costs some 20 MB of memory just by being imported.
  const { PGlite } = await import('@electric-sql/pglite')
  const { PGliteDialect } = await import('kysely-pglite-dialect')
  // pg_trgm: the search index (sql/005-search.sql) needs the extension loaded before CREATE EXTENSION.
  const { pg_trgm: pgTrgm } = await import('@electric-sql/pglite/contrib/pg_trgm')
  const pglite = await PGlite.create(dir, { parsers: { 20: (v: string) => Number(v) }, extensions: { pg_trgm: pgTrgm } })
  const applied = await migrate({
    exec: async script => { await pglite.exec(script) },
    query: async <R>(text: string, params?: unknown[]) => (await pglite.query<R>(text, params)).rows
  })
  if (applied.length > 0) fastify.log.info({ applied, dir }, 'migrations applied (embedded PGlite)')
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite), log: queryLog(fastify.metrics) })
  fastify.decorate('db', db)
  fastify.decorate('dbPool', () => ({ kind: 'pglite' as const, total: 1, idle: 1, waiting: 0 }))
  fastify.addHook('onClose', async () => { await db.destroy() })
}, { name: 'database', dependencies: ['config', 'metrics'] })

/**
 * The pool as Kysely sees it, sending the statements compiled once (src/db/compiled.ts: the hot
 * reads and the write path's statements) as named prepared statements, which PostgreSQL parses
 * and plans once per connection instead of on every run (PostgreSQL's CPU per write ≈ 0.7×); any
 * other statement goes as before. `DB_PREPARED_STATEMENTS=false` turns it off (for a pooler that
 * does not keep prepared statements across transactions, e.g. PgBouncer before 1.21 in
 * transaction mode).
 */
function preparing (pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PreparingClient>()
  return {
    connect: async () => {
      const client = await pool.connect()
      let wrapped = clients.get(client)
      if (wrapped === undefined) clients.set(client, wrapped = new PreparingClient(client))
      return wrapped
    },
    // (the pool belongs to @fastify/postgres, which ends it)
    end: async () => {}
  }
}

class PreparingClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient
  constructor (client: pg.PoolClient) { this.#client = client }

  query<R>(sql: string, parameters: readonly unknown[]): Promise<PostgresQueryResult<R>>
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>
  query<R> (sql: string | PostgresCursor<R>, parameters: readonly unknown[] = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof sql !== 'string') throw new Error('database: cursors are not configured')
    return this.#run(sql, parameters)
  }

  async #run<R> (sql: string, parameters: readonly unknown[]): Promise<PostgresQueryResult<R>> {
    const name = preparedName(sql)
    const values = [...parameters]
    const result = await this.#client.query<pg.QueryResultRow & R>(name === undefined ? { text: sql, values } : { name, text: sql, values })
    // (Kysely reads `command` only to tell an INSERT, UPDATE, DELETE or MERGE by its row count)
    return { command: result.command as PostgresQueryResult<R>['command'], rowCount: result.rowCount ?? 0, rows: result.rows }
  }

  release (destroy?: boolean): void {
    this.#client.release(destroy)
  }
}

/**
 * Every statement's duration, from Kysely's query log: all of them, those that take a row lock
 * (`FOR UPDATE`: the workspace lock, so their time is the wait for it, mostly), and the deadlocks
 * and serialization failures among the errors.
 * @see https://kysely.dev/docs/recipes/logging
 */
function queryLog (metrics: Metrics): (event: LogEvent) => void {
  return function observeQuery (event) {
    const seconds = event.queryDurationMillis / 1000
    metrics.dbQuery.observe({ outcome: event.level === 'error' ? 'error' : 'ok' }, seconds)
    if (/ for update\b/i.test(event.query.sql)) metrics.dbLockWait.observe(seconds)
    if (event.level === 'error') {
      const code = (event.error as { code?: unknown } | null)?.code
      if (code === '40P01') metrics.dbConflicts.inc({ kind: 'deadlock' })
      else if (code === '40001') metrics.dbConflicts.inc({ kind: 'serialization' })
    }
  }
}

/**
 * Retries `connect` with backoff until it succeeds or `timeoutMs` has passed: started together
 * with its database (compose, a rolling restart), the server waits for it instead of crashing.
 */
export async function untilUp<T> (connect: () => Promise<T>, timeoutMs: number, onRetry: (err: unknown) => void): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect()
    } catch (err) {
      if (Date.now() >= deadline) throw err
      onRetry(err)
      await new Promise(resolve => setTimeout(resolve, Math.min(200 * 2 ** attempt, 2_000, Math.max(0, deadline - Date.now()))))
    }
  }
}
