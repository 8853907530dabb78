import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { BenchContext, Scenario, Settings } from './lib/context.js'
import { measureFanout, type FanoutShared } from './lib/fan-series.js'
import { report } from './lib/report.js'
import type { Row } from './lib/rows.js'
import { login, seedBench, type Seed } from './lib/seed.js'
import { freePort, log, PIN, pinSelf, ROOT, round, serverCommand, START_ENV, startCommand, startProcess, LOADER_CPU, SERVER_CPU, type Proc } from './lib/util.js'
import readCached from './scenarios/read-cached.js'
import readLogged from './scenarios/read-logged.js'
import readUncached from './scenarios/read-uncached.js'
import writeIfMatch from './scenarios/write-if-match.js'
import writeSpread from './scenarios/write-spread.js'
import jupyterPeer from './scenarios/jupyter-peer.js'
import batchCreate from './scenarios/batch-create.js'
import treePages from './scenarios/tree-pages.js'
import fanoutOneInstance from './scenarios/fanout-one-instance.js'
import memory from './scenarios/memory.js'
import fanoutTwoInstances from './scenarios/fanout-two-instances.js'
import { find, search } from './scenarios/search.js'

/**
 * `npm run bench` / `npm run bench:ci`: starts the server on real PostgreSQL and Redis, seeds a
 * workspace through its API, runs every scenario of bench/README.md (bench/scenarios) beside its
 * baseline (same run, same machine, same core), prints one Markdown table and writes it as JSON
 * to bench/results/. Exits 1 when any scenario saw a transport error, a lost event or a non-2xx
 * answer; never because of a timing.
 *
 * Flags: --ci (short), --profile (server started with --cpu-prof, profiles in
 * bench/results/profiles), --only=1,3,6 (a subset of scenarios; 6, 7 and 8 share one fan-out series),
 * --warm=N (seconds of the first round's warm-up of each side of an HTTP scenario).
 */

const argv = process.argv.slice(2)
const CI = argv.includes('--ci')
const PROFILE = argv.includes('--profile')
const only = argv.find(a => a.startsWith('--only='))?.slice(7).split(',')
const wanted = (scenario: Scenario): boolean => only === undefined || only.includes(scenario.id)

const warmFirst = argv.find(a => a.startsWith('--warm='))?.slice(7)
const settings: Settings = {
  ...CI
    ? { rounds: 1, warmFirst: 10, warm: 1, seconds: 3, latSeconds: 3, satSeconds: 3, stallMs: 5_000 }
    : { rounds: 2, warmFirst: 20, warm: 2, seconds: 8, latSeconds: 10, satSeconds: 6, stallMs: 10_000 },
  ...warmFirst === undefined ? {} : { warmFirst: Number(warmFirst) }
}
const PG_ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PROFILE_DIR = join(ROOT, 'bench/results/profiles')

/**
 * In table order. The HTTP scenarios run beside the bare HTTP baseline, the fan-out ones after it
 * has stopped; 8 reads the memory of 6's series, so its rows come before 7's second instance.
 */
const SCENARIOS: Scenario[] = [readCached, readLogged, readUncached, writeIfMatch, writeSpread, batchCreate, treePages, jupyterPeer, fanoutOneInstance, memory, fanoutTwoInstances, search, find]

const loadAtStart = loadavg().map(x => round(x, 2))
const procs = new Set<Proc>()
let dbName = ''
let dataDir = ''

async function adminQuery (sql: string, connectionString = PG_ADMIN): Promise<void> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

async function start (name: string, nodeArgs: string[], env: Record<string, string>, readyPath: string): Promise<Proc> {
  const proc = await startProcess(name, nodeArgs, env, await freePort(), readyPath)
  procs.add(proc)
  return proc
}

async function startPeer (name: string, argv: string[], env: Record<string, string>, port: number, readyPath: string): Promise<Proc> {
  const proc = await startCommand(name, argv, env, port, readyPath)
  procs.add(proc)
  return proc
}

async function stop (proc: Proc): Promise<void> {
  await proc.stop()
  procs.delete(proc)
}

/** At the end, on failure or on Ctrl-C: stops what still runs, drops the database, removes the data directory. */
async function cleanup (): Promise<void> {
  for (const p of procs) await stop(p)
  if (dbName !== '') await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(err => { log(`could not drop ${dbName}: ${String(err)}`) })
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true })
}

interface ServerSetup { nodeArgs: string[], env: Record<string, string>, databaseUrl: string }

/** The server's flags and settings: production, rate limits, per-user bounds and load shedding off, this run's database. */
function serverSetup (args: string[], databaseUrl: string): ServerSetup {
  const env = {
    ...START_ENV,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    DATA_DIR: dataDir,
    RATE_LIMIT_ENABLED: 'false',
    // Load shedding off (0 turns the check off), as rate limits are: the saturation phases measure
    // capacity, and a shed request would be a non-2xx answer.
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    // The fan-out scenarios open up to a thousand sockets as a handful of users, and the seeding
    // logs in again and again: per-user socket and session bounds would refuse them.
    WS_MAX_SOCKETS_PER_USER: '1000000',
    MAX_NEW_SESSIONS_PER_WINDOW: '1000000',
    // GROUP_COMMIT=false in the runner's environment measures writes without the group commit.
    ...(process.env.GROUP_COMMIT === undefined ? {} : { GROUP_COMMIT: process.env.GROUP_COMMIT })
  }
  return { nodeArgs: [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []), ...args], env, databaseUrl }
}

/** The bare Fastify baseline of the HTTP scenarios, on the seeded rows (bench/baseline-http.ts). */
async function startHttpBaseline (seed: Seed, databaseUrl: string): Promise<Proc> {
  const entryFile = join(dataDir, 'entry.json')
  writeFileSync(entryFile, JSON.stringify(seed.entry))
  const profile = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, '--cpu-prof-name=baseline-http.cpuprofile'] : []
  return await start('http baseline', [...profile, '--import', 'tsx', join(ROOT, 'bench/baseline-http.ts')],
    { DATABASE_URL: databaseUrl, USER_ID: seed.user.id, SESSION_ID: seed.user.sessionId, ENTRY_FILE: entryFile }, '/health')
}

interface Runner {
  context: BenchContext
  /** before the fan-out: it measures memory and CPU with nothing else of ours running */
  stopHttpBaseline: () => Promise<void>
  finish: () => Promise<void>
}

/**
 * Before each scenario: the pages the scenarios before it wrote go to disk now (a CHECKPOINT),
 * not in the middle of its measurement. PostgreSQL checkpoints when `checkpoint_timeout` (5 min)
 * has passed or `max_wal_size` of WAL was written since the last one, and then writes every dirty
 * page and fsyncs the data files beside the WAL's own flushes: a scenario at 50 writes/s measured
 * the write storm of the 2,000 writes/s before it. Each scenario still pays for its own writes.
 */
async function checkpoint (): Promise<void> {
  const t0 = performance.now()
  await adminQuery('CHECKPOINT')
  log(`checkpoint: ${Math.round(performance.now() - t0)} ms`)
}

/** Starts the project server, seeds it, and builds the context every scenario runs in. */
async function prepare (server: ServerSetup): Promise<Runner> {
  let A = await start('server A', server.nodeArgs, server.env, '/ready')
  log('seeding')
  const seed = await seedBench(A.base)
  log(`seeded: 1 read file, 2 × 100 write files, a 10,000-entry tree (${seed.cursors.length} pages of 1,000)`)
  // Statistics, as a database in service has them (autovacuum's ANALYZE, which would otherwise
  // come a minute or more into the run; pgbench analyses after its seeding too). PostgreSQL keeps
  // each connection's plans until a table's statistics change: made on the empty tables, some
  // chose an index that reads a workspace's whole history (bench/README.md, 2026-12-03).
  await adminQuery('ANALYZE', server.databaseUrl)
  let httpBaseline: Promise<Proc> | undefined
  let fanout: Promise<FanoutShared> | undefined
  const context: BenchContext = {
    settings,
    seed,
    project: () => A,
    restartProject: async name => {
      await stop(A)
      A = await start(name, server.nodeArgs, server.env, '/ready')
      return A
    },
    token: async () => await login(A.base, seed.user),
    startServer: async (name, env = {}) => await start(name, server.nodeArgs, { ...server.env, ...env }, '/ready'),
    start,
    startCommand: startPeer,
    stop,
    httpBaseline: async () => await (httpBaseline ??= startHttpBaseline(seed, server.databaseUrl)),
    fanout: async () => await (fanout ??= measureFanout(context))
  }
  return {
    context,
    stopHttpBaseline: async () => { if (httpBaseline !== undefined) await stop(await httpBaseline) },
    finish: async () => {
      if (fanout !== undefined) (await fanout).agent.destroy()
      await stop(A)
    }
  }
}

async function main (): Promise<void> {
  pinSelf()
  const started = new Date()
  const server = serverCommand()
  log(`mode ${CI ? 'ci' : 'full'}; server from ${server.kind}; ${PIN ? `server on CPU ${SERVER_CPU}, load generator on CPU ${LOADER_CPU}` : 'no pinning (needs 2 cores and taskset)'}`)
  // Ratios assume the two cores are ours: say so when other work is running.
  if ((loadAtStart[0] ?? 0) > 1) log(`warning: load average ${loadAtStart.join(' ')} before the run: other processes share the cores, figures will be noisy`)
  dbName = `wb_bench_${randomBytes(6).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${dbName}`)
  dataDir = mkdtempSync(join(tmpdir(), 'wb-bench-'))
  if (PROFILE) mkdirSync(PROFILE_DIR, { recursive: true })
  const rows: Row[] = []
  try {
    const runner = await prepare(serverSetup(server.args, PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`)))
    for (const scenario of SCENARIOS) {
      if (!wanted(scenario)) continue
      if (scenario.kind === 'fanout') await runner.stopHttpBaseline()
      await checkpoint()
      rows.push(...await scenario.run(runner.context))
    }
    await runner.finish()
  } finally {
    await cleanup()
  }
  report({ ci: CI, started, serverKind: server.kind, settings, loadAtStart, rows })
}

const cleanupOnSignal = (signal: NodeJS.Signals): void => {
  log(`${signal}: stopping`)
  void cleanup().finally(() => process.exit(130))
}
process.once('SIGINT', cleanupOnSignal)
process.once('SIGTERM', cleanupOnSignal)

try {
  await main()
} catch (err) {
  log(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exitCode = 1
}
