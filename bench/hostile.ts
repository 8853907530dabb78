import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import WebSocket from 'ws'
import { api, createWorkspace, register, type User } from './lib/seed.js'
import { freePort, log, rssBytes, serverCommand, sleep, startProcess, type Proc } from './lib/util.js'

/**
 * `npm run bench:hostile`: the reproductions of the issue "Hardening" run against a production
 * build (NODE_ENV=production, rate limits on, default bounds), each with the server's RSS and the
 * database's size before and after, so that the figures show they stay flat. A measurement, not a
 * test: the tests (test/api/bounds-*.test.ts, test/live/limits-*.test.ts…) assert the behaviour.
 */

const PG_ADMIN = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Figure { finding: string, what: string, round: number, result: string, rssMb: number, dbMb: number, seconds: number }

const ROUNDS = 3

const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024 * 10) / 10

async function main (): Promise<void> {
  const name = `wb_hostile_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_ADMIN })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const databaseUrl = PG_ADMIN.replace(/\/[^/]*$/, `/${name}`)
  const db = new pg.Client({ connectionString: databaseUrl })
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-hostile-'))
  const chatLogDir = join(dataDir, 'chat')
  const { args } = serverCommand()
  const server = await startProcess('server', args, {
    NODE_ENV: 'production',
    JWT_SECRET: randomBytes(32).toString('hex'),
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    DATA_DIR: dataDir,
    CHAT_LOG_DIR: chatLogDir,
    LOG_LEVEL: 'warn'
  }, await freePort(), '/ready')
  await db.connect()
  const figures: Figure[] = []
  const dbSize = async (): Promise<number> => Number((await db.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n')).rows[0]?.n)

  /** Runs `attack` ROUNDS times after `setup`, with the RSS and database size after each round. */
  async function measure<C> (finding: string, what: string, setup: () => Promise<C>, attack: (context: C) => Promise<string>, rounds = ROUNDS, vacuumAfter = 0): Promise<void> {
    log(`finding ${finding}: ${what}`)
    const context = await setup()
    await sleep(1_000)
    figures.push({ finding, what, round: 0, result: 'before', rssMb: mb(rssBytes(server.pid)), dbMb: mb(await dbSize()), seconds: 0 })
    for (let round = 1; round <= rounds; round++) {
      const started = performance.now()
      const result = await attack(context)
      const seconds = Math.round((performance.now() - started) / 100) / 10
      await sleep(1_000)
      figures.push({ finding, what, round, result, rssMb: mb(rssBytes(server.pid)), dbMb: mb(await dbSize()), seconds })
      if (round === vacuumAfter) {
        // What autovacuum does within a minute or so: the rolled-back rows' space becomes reusable.
        await db.query('VACUUM')
        figures.push({ finding, what, round, result: 'VACUUM (as autovacuum would)', rssMb: mb(rssBytes(server.pid)), dbMb: mb(await dbSize()), seconds: 0 })
      }
    }
  }

  try {
    await measure('1', 'a batch of 28 × 2 copies, each doubling the tree (3 KB file)', async () => {
      const user = await register(server.base)
      const ws = await createWorkspace(server.base, user.token, 'copies')
      await api(server.base, 'PUT', `/v1/workspaces/${ws}/files/L0/f.txt`, user.token, { content: 'x'.repeat(3072) }, 201)
      return { user, ws }
    }, async ({ user, ws }) => {
      const operations = []
      for (let i = 0; i < 28; i++) operations.push({ type: 'copy', path: `/L${i}`, newPath: `/L${i + 1}/a` }, { type: 'copy', path: `/L${i}`, newPath: `/L${i + 1}/b` })
      const res = await fetch(`${server.base}/v1/workspaces/${ws}/operations/batch`, { method: 'POST', headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ operations }) })
      const body = await res.json() as { code?: string }
      const files = (await db.query<{ n: string }>('SELECT count(*) AS n FROM files WHERE workspace_id = $1', [ws])).rows[0]?.n
      return `${res.status} ${body.code ?? ''}, ${files} entries in the workspace`
    }, 10, 5)

    await measure('2', '300 × 1 MB pings while a replay waits for a client that stopped reading', async () => {
      const user = await register(server.base)
      const ws = await createWorkspace(server.base, user.token, 'replay')
      // A replay larger than the send buffer (WS_MAX_BUFFERED_BYTES) and the kernel's: it must wait.
      for (let b = 0; b < 30; b++) {
        await api(server.base, 'POST', `/v1/workspaces/${ws}/operations/batch`, user.token, { operations: Array.from({ length: 1000 }, (_, i) => ({ type: 'create', path: `/d${b}/a-rather-long-file-name-to-make-each-event-larger-${i}.txt`, content: 'y' })) }, 200)
      }
      return { user, ws }
    }, async ({ user, ws }) => await stalledReplay(server, user, ws), 6)

    await measure('5', '300 DELETEs, each with a fresh X-Session-Id', async () => {
      const user = await register(server.base)
      return { user, ws: await createWorkspace(server.base, user.token, 'sessions') }
    }, async ({ user, ws }) => {
      const rowsBefore = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM activity')).rows[0]?.n)
      const filesBefore = countFiles(chatLogDir)
      const statuses = new Map<number, number>()
      for (let i = 0; i < 300; i++) {
        const res = await fetch(`${server.base}/v1/workspaces/${ws}/files/nope${i}.txt`, { method: 'DELETE', headers: { authorization: `Bearer ${user.token}`, 'x-session-id': randomUUID() } })
        await res.arrayBuffer()
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      }
      await sleep(1_500) // the chat log is written behind
      const rows = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM activity')).rows[0]?.n) - rowsBefore
      return `${[...statuses].map(([s, n]) => `${n} × ${s}`).join(', ')}; +${rows} activity rows, +${countFiles(chatLogDir) - filesBefore} log files`
    })

    await measure('6', 'history ?limit=1 of a file moved back and forth 8,000 times', async () => {
      const user = await register(server.base)
      const ws = await createWorkspace(server.base, user.token, 'moves')
      await api(server.base, 'PUT', `/v1/workspaces/${ws}/files/a.txt`, user.token, { content: 'a' }, 201)
      for (let b = 0; b < 8; b++) {
        const operations = Array.from({ length: 1000 }, (_, i) => i % 2 === 0 ? { type: 'move', path: '/a.txt', newPath: '/b.txt' } : { type: 'move', path: '/b.txt', newPath: '/a.txt' })
        await api(server.base, 'POST', `/v1/workspaces/${ws}/operations/batch`, user.token, { operations }, 200)
      }
      return { user, ws }
    }, async ({ user, ws }) => {
      const times: number[] = []
      for (let i = 0; i < 5; i++) {
        const started = performance.now()
        await api(server.base, 'GET', `/v1/workspaces/${ws}/history/a.txt?limit=1`, user.token, undefined, 200)
        times.push(performance.now() - started)
      }
      return `history?limit=1: ${times.map(t => Math.round(t)).join(', ')} ms`
    })

    await measure('7', '100 REST requests, then 300 RPC writes over one socket', async () => {
      const user = await register(server.base)
      return { user, ws: await createWorkspace(server.base, user.token, 'rpc') }
    }, async ({ user, ws }) => {
      let rest429 = 0
      for (let i = 0; i < 100; i++) {
        const res = await fetch(`${server.base}/v1/workspaces/${ws}`, { headers: { authorization: `Bearer ${user.token}` } })
        await res.arrayBuffer()
        if (res.status === 429) rest429++
      }
      return `${rest429} REST 429s; RPC: ${await rpcWrites(server, user, ws, 300)}`
    })
  } finally {
    await server.stop()
    await db.end()
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
    rmSync(dataDir, { recursive: true, force: true })
  }
  console.log('| finding | reproduction | round | answer | RSS MB after | database MB after | s |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const f of figures) console.log(`| ${f.finding} | ${f.round === 0 ? f.what : ''} | ${f.round === 0 ? 'setup' : f.round} | ${f.result} | ${f.rssMb} | ${f.dbMb} | ${f.seconds} |`)
}

function countFiles (dir: string): number {
  try { return readdirSync(dir).length } catch { return 0 }
}

async function open (server: Proc, user: User): Promise<WebSocket> {
  const ws = new WebSocket(`${server.base.replace(/^http/, 'ws')}/v1/ws`, { headers: { authorization: `Bearer ${user.token}` }, perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  return ws
}

/** Subscribes from 0, stops reading, sends 300 × 1 MB pings: how does the socket end? */
async function stalledReplay (server: Proc, user: User, workspaceId: string): Promise<string> {
  const ws = await open(server, user)
  const closed = new Promise<string>(resolve => ws.once('close', (code, reason) => { resolve(`closed ${code} ${reason.toString()}`) }))
  await sleep(200)
  ws.send(JSON.stringify({ type: 'subscribe', channel: `workspace:${workspaceId}`, since: 0 }))
  ws.pause() // stops reading: the replay fills the server's send buffer and waits
  const pad = 'x'.repeat(1_000_000 - 40)
  let sent = 0
  for (; sent < 300 && ws.readyState === WebSocket.OPEN; sent++) {
    ws.send(JSON.stringify({ type: 'ping', pad }))
    if (sent % 20 === 0) await sleep(10)
  }
  const peak = rssBytes(server.pid)
  // Still not reading: the replay cannot drain, so WS_REPLAY_TIMEOUT_MS (30 s) must end it.
  const end = await Promise.race([closed, sleep(35_000).then(async () => {
    ws.resume()
    return await Promise.race([closed, sleep(5_000).then(() => 'still open 40 s later')])
  })])
  ws.terminate()
  return `${sent} sent; ${end}; server RSS peak while sending ${mb(peak)} MB`
}

async function rpcWrites (server: Proc, user: User, workspaceId: string, n: number): Promise<string> {
  const ws = await open(server, user)
  const outcomes = new Map<string, number>()
  let answered = 0
  const done = new Promise<void>(resolve => {
    ws.on('message', data => {
      const m = JSON.parse(data.toString()) as { type: string, error?: { code: string } }
      if (m.type !== 'rpc.result' && m.type !== 'rpc.error') return
      const key = m.type === 'rpc.result' ? 'ok' : m.error?.code ?? 'error'
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
      if (++answered === n) resolve()
    })
    ws.once('close', () => { resolve() })
  })
  await sleep(200)
  for (let i = 0; i < n; i++) {
    ws.send(JSON.stringify({ type: 'rpc', id: String(i), method: 'operations.apply', params: { workspaceId, op: { type: 'create', path: `/r${i}.txt`, content: 'r' } } }))
    if (i % 20 === 19) await sleep(250) // under WS_MESSAGES_PER_SECOND: the per-user budget is what is measured
  }
  await Promise.race([done, sleep(30_000)])
  ws.terminate()
  return [...outcomes].map(([k, v]) => `${v} × ${k}`).join(', ')
}

await main()
