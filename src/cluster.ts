import cluster, { type Worker } from 'node:cluster'
import { serveClusterMetrics } from './ops/cluster-metrics.js'

/**
 * WORKERS=n: a primary process that forks n workers (node:cluster), each a full instance of the
 * server listening on the same port; the primary only supervises. Workers share nothing in
 * memory: workspaces, revisions and events are in PostgreSQL and Redis, exactly as between
 * machines behind a load balancer, which is why WORKERS > 1 needs DATABASE_URL and REDIS_URL.
 *
 * - A worker that dies unexpectedly is replaced after a second; more than MAX_RESTARTS within a
 *   minute (a crash loop, e.g. a bad configuration) stops the primary with exit code 1.
 * - SIGTERM or SIGINT to the primary sends SIGTERM to every worker, which closes gracefully
 *   (server.ts); the primary exits 0 once all have exited 0, or 1 otherwise. Workers ignore
 *   SIGINT, so a terminal's Ctrl-C (sent to the whole process group) is one graceful shutdown.
 * - /metrics on any worker answers for all of them: the worker asks the primary, which gathers
 *   every worker's registry over IPC and sums them (src/ops/cluster-metrics.ts).
 */

const MAX_RESTARTS = 10

/** JSON lines like pino's, so the primary's few messages sit well beside the workers' logs. */
function log (level: 'info' | 'warn' | 'error', msg: string, extra: Record<string, unknown> = {}): void {
  const levels = { info: 30, warn: 40, error: 50 }
  process.stdout.write(`${JSON.stringify({ level: levels[level], time: Date.now(), pid: process.pid, role: 'primary', msg, ...extra })}\n`)
}

/** The workers that have not exited (node:cluster forgets a worker once it has). */
function liveWorkers (): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
}

function signalWorkers (signal: NodeJS.Signals): void {
  for (const w of liveWorkers()) w.process.kill(signal)
}

export interface PrimaryOptions {
  workers: number
  /** how long a worker may take to close after SIGTERM before it is killed */
  graceMs: number
}

/** Runs the primary: forks, supervises, aggregates metrics, and shuts the workers down on a signal. */
export function runPrimary ({ workers, graceMs }: PrimaryOptions): void {
  serveClusterMetrics()
  let stopping = false
  let failed = false
  const restarts: number[] = []

  const fork = (): Worker => cluster.fork()
  for (let i = 0; i < workers; i++) fork()
  log('info', 'started workers', { workers })

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      // Workers close gracefully on SIGTERM and exit 0; anything else is a failed shutdown.
      if (code !== 0) failed = true
      if (liveWorkers().length === 0) {
        log('info', 'all workers exited', { failed })
        process.exit(failed ? 1 : 0)
      }
      return
    }
    const now = Date.now()
    restarts.push(now)
    while ((restarts[0] ?? now) < now - 60_000) restarts.shift()
    if (restarts.length > MAX_RESTARTS) {
      log('error', 'workers keep exiting; giving up', { pid: worker.process.pid, code, signal })
      stopping = true
      failed = true
      signalWorkers('SIGTERM')
      if (liveWorkers().length === 0) process.exit(1)
      return
    }
    log('warn', 'worker exited; starting another', { workerPid: worker.process.pid, code, signal })
    // Not unref'd: when every worker has died, this timer is what keeps the primary running.
    setTimeout(() => { if (!stopping) fork() }, 1_000)
  })

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    log('info', 'stopping workers', { signal })
    if (liveWorkers().length === 0) process.exit(0)
    signalWorkers('SIGTERM')
    setTimeout(() => {
      log('error', 'workers did not exit within the grace period; killing them', { graceMs })
      signalWorkers('SIGKILL')
      process.exit(1)
    }, graceMs + 5_000).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
