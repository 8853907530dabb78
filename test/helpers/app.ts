import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/core/config.js'
import { migrate, migrationFiles, SQL_DIR } from '../../src/db/migrate.js'
import { request, expectStatus, type AuthResult, type Target, type Workspace } from './http.js'

/** The app under test: databases, an in-process app, users, and real server processes. */

/** The project root: every path into the project (e.g. `src/server.ts`) is taken from here. */
export const ROOT_DIR = fileURLToPath(new URL('../..', import.meta.url))
/**
 * Node's arguments to run a TypeScript entry point in a spawned process: the loader the tests
 * run under (test/loader), so that a file's coverage from a child and from a test process is of
 * the same transpiled code (tap merges them; tsx's minified output would not merge).
 */
export const TS_IMPORT = ['--import', new URL('../loader/register.mjs', import.meta.url).href]

/** The machine's PostgreSQL (trust auth); each test file gets its own database. */
export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const TEST_SECRET = 'test-secret-of-at-least-thirty-two-characters!'
export const PASSWORD = 'correct horse battery'

/** What helpers need of a node-tap test: somewhere to hang clean-up. */
export interface Teardown { teardown: (fn: () => unknown) => void }

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** A free local port (released again, so a spawned server can take it). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}

function urlFor (database: string): string {
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${database}`
  return url.toString()
}

/** A template database migrated once per set of migrations; test databases are copies of it. */
async function templateName (admin: pg.Client): Promise<string> {
  const hash = createHash('sha256')
  for (const file of await migrationFiles()) hash.update(file).update(await readFile(join(SQL_DIR, file)))
  const name = `wb_tpl_${hash.digest('hex').slice(0, 12)}`
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
  if (exists.rowCount === 0) {
    await admin.query(`CREATE DATABASE ${name}`)
    const client = new pg.Client({ connectionString: urlFor(name) })
    await client.connect()
    try {
      await migrate({ exec: async s => { await client.query(s) }, query: async (text, params) => (await client.query(text, params)).rows })
    } finally {
      await client.end()
    }
  }
  return name
}

/** Creates a fresh, migrated database and drops it when the test ends. Returns its URL. */
export async function createTestDatabase (t: Teardown): Promise<string> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL })
  await admin.connect()
  const name = `wb_test_${randomBytes(6).toString('hex')}`
  try {
    await admin.query('SELECT pg_advisory_lock(727275)')
    const template = await templateName(admin)
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`)
  } finally {
    await admin.query('SELECT pg_advisory_unlock(727275)').catch(() => {})
    await admin.end()
  }
  t.teardown(async () => {
    const drop = new pg.Client({ connectionString: PG_ADMIN_URL })
    await drop.connect()
    await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await drop.end()
  })
  return urlFor(name)
}

/** A plain pg client on a test database, ended when the test ends. */
export async function dbClient (t: Teardown, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(async () => { await client.end() })
  return client
}

/**
 * Waits until a backend of `client`'s database waits on a lock: a request under test has reached
 * the statement another transaction blocks (a fixed sleep assumes it got there in time, which a
 * loaded machine breaks).
 */
export async function untilLockWait (client: pg.Client, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    // Inside a transaction (the lock holder's own client), PostgreSQL would answer from the
    // activity snapshot it took at the first look: drop it each time.
    await client.query('SELECT pg_stat_clear_snapshot()')
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    if ((rows[0]?.n ?? 0) > 0) return
    if (Date.now() > deadline) throw new Error('no backend waited on a lock')
    await sleep(20)
  }
}

/** The configuration tests build apps with: `env` over quiet, test-secret defaults. */
export function testConfig (env: Record<string, string> = {}): Config {
  // Load shedding is off unless a test turns it on: a busy test process must not shed its own requests.
  // Passwords hashed at scrypt's lowest accepted cost: thousands of registrations per run.
  return loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', PASSWORD_HASH_COST: '10', ...env })
}

/** Builds the app from `config`; closed when the test ends. */
export async function buildWith (t: Teardown, config: Config): Promise<FastifyInstance> {
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Builds the app against a fresh database (or the env given); closed when the test ends. */
export async function build (t: Teardown, env: Record<string, string> = {}): Promise<FastifyInstance> {
  return await buildWith(t, testConfig({ DATABASE_URL: env.DATABASE_URL ?? await createTestDatabase(t), ...env }))
}

/** The base URL of an app listening on a random local port. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

export interface TestUser {
  id: string
  email: string
  token: string
  refreshToken: string
  sessionId: string
  auth: { authorization: string }
}

let userCount = 0
/** Registers a new user, in-process (an app) or over HTTP (a base URL). */
export async function registerUser (target: Target, email = `user${++userCount}-${process.pid}-${randomBytes(4).toString('hex')}@example.com`): Promise<TestUser> {
  const res = await request(target, 'POST', '/v1/auth/register', { payload: { email, password: PASSWORD } })
  const body = expectStatus<AuthResult>(res, 201, 'register')
  return { id: body.user.id, email, token: body.accessToken, refreshToken: body.refreshToken, sessionId: body.sessionId, auth: { authorization: `Bearer ${body.accessToken}` } }
}

export async function createWorkspace (target: Target, user: TestUser, name = 'ws'): Promise<string> {
  const res = await request(target, 'POST', '/v1/workspaces', { token: user.token, payload: { name } })
  return expectStatus<Workspace>(res, 201, 'create workspace').id
}

export interface SpawnOptions {
  /** added to (and overriding) the base environment */
  env?: Record<string, string>
  /**
   * 'test' (default): only PATH and HOME from this process, quiet logs, no load shedding.
   * 'user': this process's environment as a user would have it, without the database, the
   * secrets and the test runner's hooks.
   */
  baseEnv?: 'test' | 'user'
  /** false: return at once; call `ready()` to wait for /health */
  wait?: boolean
  /** how long the default wait for /health may take */
  readyTimeoutMs?: number
}

export interface ServerProcess {
  base: string
  port: number
  pid: number
  /** everything it wrote to stdout and stderr so far */
  output: () => string
  /** the exit code (null when a signal ended it) */
  exited: Promise<number | null>
  /** the signal that ended it, once it exited */
  exitSignal: () => NodeJS.Signals | null
  /** true once /health answers 200; false if the process exits or the time runs out */
  ready: (timeoutMs: number) => Promise<boolean>
  kill: (signal: NodeJS.Signals) => void
  /** resident set size in bytes, from /proc */
  rss: () => Promise<number>
  /** SIGTERM, then SIGKILL after 10 s; also run when the test ends */
  stop: () => Promise<void>
}

function userEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue
    if (/^(DATABASE_URL|JWT_SECRET|JWT_PUBLIC_KEY|REDIS_URL|NODE_OPTIONS|LOG_LEVEL|PORT|HOST|DATA_DIR|NODE_ENV)$/.test(k)) continue
    if (/^_?TAP/i.test(k)) continue
    env[k] = v
  }
  return env
}

/**
 * Starts `node src/server.ts` (through test/loader) on a free port and (unless `wait: false`) waits until
 * /health answers. Stopped when the test ends.
 */
export async function spawnServer (t: Teardown, opts: SpawnOptions = {}): Promise<ServerProcess> {
  const port = await freePort()
  const base = opts.baseEnv === 'user'
    ? userEnv()
    : { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', PASSWORD_HASH_COST: '10' }
  const child = spawn(process.execPath, [...TS_IMPORT, join(ROOT_DIR, 'src/server.ts')], {
    cwd: ROOT_DIR,
    env: { ...base, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  let signal: NodeJS.Signals | null = null
  const exited = new Promise<number | null>(resolve => child.once('exit', (code, sig) => { signal = sig; resolve(code) }))
  const pid = child.pid
  if (pid === undefined) throw new Error('spawn failed')
  let running = true
  void exited.then(() => { running = false })
  const stop = async (): Promise<void> => {
    if (!running) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(timer)
  }
  t.teardown(stop)
  const url = `http://127.0.0.1:${port}`
  const ready = async (timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs
    // `running` turns false from the exit handler, between the awaits
    for (;;) {
      if (!running || Date.now() > deadline) return false
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) })
        if (res.status === 200) return true
      } catch {
        // not listening yet
      }
      await sleep(100)
    }
  }
  if (opts.wait !== false) {
    const timeoutMs = opts.readyTimeoutMs ?? 60_000
    if (!await ready(timeoutMs)) {
      throw new Error(running ? `server not ready within ${timeoutMs} ms:\n${output.slice(-3000)}` : `server exited before it was ready:\n${output.slice(-3000)}`)
    }
  }
  return {
    base: url,
    port,
    pid,
    output: () => output,
    exited,
    exitSignal: () => signal,
    ready,
    kill: s => { child.kill(s) },
    rss: async () => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8')
      const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]
      if (kb === undefined) throw new Error('no VmRSS')
      return Number(kb) * 1024
    },
    stop
  }
}
