import pg from 'pg'

/**
 * Bounds the time any piece of work holds a pooled PostgreSQL connection — in practice a
 * transaction: DB_TRANSACTION_TIMEOUT_MS (issue "Hardening", finding 14). DB_STATEMENT_TIMEOUT_MS
 * bounds each statement, but a batch or a revert is many statements, and a few of them at once
 * could hold every connection of the pool for minutes. PostgreSQL 17's `transaction_timeout` would
 * do this in the server; the versions before it need the client to.
 *
 * Every connection handed out is timed. Past the limit, its running statement is cancelled
 * (`pg_cancel_backend`: the statement fails with 57014, the transaction rolls back, the request
 * answers 503 UNAVAILABLE and the connection returns to the pool). One still held a second later
 * (its work was between statements, or never noticed) is terminated (`pg_terminate_backend`).
 * Both run on a connection of their own, opened for the purpose, since the pool may be exhausted.
 */
export interface Watchdog {
  stop: () => void
}

interface Held { since: number, cancelled: boolean, terminated: boolean }

export function watchConnections (pool: pg.Pool, opts: {
  /** 0: only time the connections (`onRelease`), never cancel */
  limitMs: number
  connectionString: string
  log: { warn: (obj: object, msg: string) => void }
  /** how long each connection was held, in ms (the transaction duration metric) */
  onRelease?: (heldMs: number) => void
}): Watchdog {
  const held = new Map<pg.PoolClient, Held>()
  pool.on('acquire', client => { held.set(client, { since: performance.now(), cancelled: false, terminated: false }) })
  pool.on('release', (_err, client) => {
    const h = held.get(client)
    if (h !== undefined) opts.onRelease?.(performance.now() - h.since)
    held.delete(client)
  })
  pool.on('remove', client => { held.delete(client as pg.PoolClient) })

  async function signal (fn: 'pg_cancel_backend' | 'pg_terminate_backend', pid: number): Promise<void> {
    const admin = new pg.Client({ connectionString: opts.connectionString, application_name: 'workbench-api-watchdog', connectionTimeoutMillis: 5_000 })
    try {
      await admin.connect()
      await admin.query(`SELECT ${fn}($1)`, [pid])
    } finally {
      await admin.end().catch(() => {})
    }
  }

  if (opts.limitMs <= 0) return { stop: () => {} }
  const tick = setInterval(function watch () {
    const now = performance.now()
    for (const [client, h] of held) {
      const pid = (client as { processID?: number | null }).processID
      if (typeof pid !== 'number') continue
      const over = now - h.since - opts.limitMs
      if (over >= 0 && !h.cancelled) {
        h.cancelled = true
        opts.log.warn({ pid, heldMs: now - h.since }, 'a database connection was held past DB_TRANSACTION_TIMEOUT_MS: cancelling its statement')
        signal('pg_cancel_backend', pid).catch((err: unknown) => { opts.log.warn({ err, pid }, 'cancelling failed') })
      } else if (over >= 1_000 && !h.terminated) {
        h.terminated = true
        opts.log.warn({ pid, heldMs: now - h.since }, 'a database connection is still held after its cancel: terminating it')
        signal('pg_terminate_backend', pid).catch((err: unknown) => { opts.log.warn({ err, pid }, 'terminating failed') })
      }
    }
  }, Math.max(50, Math.min(1_000, Math.floor(opts.limitMs / 4))))
  tick.unref()
  return { stop: () => { clearInterval(tick) } }
}
