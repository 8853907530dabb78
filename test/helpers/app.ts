import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/core/config.js'
import { migrate, migrationFiles, SQL_DIR } from '../../src/db/migrate.js'

/** The machine's PostgreSQL (trust auth); each test file gets its own database. */
export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const TEST_SECRET = 'test-secret-of-at-least-thirty-two-characters!'

interface Teardown { teardown: (fn: () => unknown) => void }

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

/** Builds the app against a fresh database (or the env given); closed when the test ends. */
export async function build (t: Teardown, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const databaseUrl = env.DATABASE_URL ?? await createTestDatabase(t)
  // Load shedding is off unless a test turns it on: a busy test process must not shed its own requests.
  const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl, OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...env })
  const app = await buildApp(config)
  await app.ready()
  t.teardown(() => app.close())
  return app
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
export async function registerUser (app: FastifyInstance, email = `user${++userCount}-${randomBytes(4).toString('hex')}@example.com`): Promise<TestUser> {
  const res = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: { email, password: 'correct horse battery' } })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  const body = res.json<{ user: { id: string }, accessToken: string, refreshToken: string, sessionId: string }>()
  return { id: body.user.id, email, token: body.accessToken, refreshToken: body.refreshToken, sessionId: body.sessionId, auth: { authorization: `Bearer ${body.accessToken}` } }
}

export async function createWorkspace (app: FastifyInstance, user: TestUser, name = 'ws'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/workspaces', headers: user.auth, payload: { name } })
  if (res.statusCode !== 201) throw new Error(`create workspace failed: ${res.statusCode} ${res.body}`)
  return res.json<{ id: string }>().id
}
