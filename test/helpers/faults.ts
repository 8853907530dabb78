import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, sleep, type Teardown } from './app.js'

/**
 * Private PostgreSQL and Redis servers for fault tests: stopping them disturbs no other test
 * file running at the same time. Both are stopped and removed when the test ends.
 */

const exec = promisify(execFile)

function pgBin (name: string): string {
  const versions = readdirSync('/usr/lib/postgresql').sort()
  const version = versions.at(-1)
  if (version === undefined) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql')
  return `/usr/lib/postgresql/${version}/bin/${name}`
}

/** PostgreSQL refuses to run as root: its tools run as the postgres user. */
async function asPostgres (command: string, args: string[]): Promise<string> {
  const argv = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', pgBin(command), ...args]] as const : [pgBin(command), args] as const
  const { stdout } = await exec(argv[0], [...argv[1]], { timeout: 60_000 })
  return stdout
}

export interface PrivatePostgres {
  url: string
  stop: (mode?: 'fast' | 'immediate') => Promise<void>
  start: () => Promise<void>
}

export async function privatePostgres (t: Teardown): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-pg-'))
  if (process.getuid?.() === 0) {
    const { stdout } = await exec('id', ['-u', 'postgres'])
    const { stdout: gid } = await exec('id', ['-g', 'postgres'])
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  const data = join(dir, 'data')
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C.UTF-8'])
  const port = await freePort()
  let running = false
  const start = async (): Promise<void> => {
    await asPostgres('pg_ctl', ['-D', data, '-w', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off`, 'start'])
    running = true
  }
  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    if (!running) return
    await asPostgres('pg_ctl', ['-D', data, '-w', '-m', mode, 'stop'])
    running = false
  }
  await start()
  t.teardown(async () => {
    await stop('immediate').catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop, start }
}

export interface PrivateRedis {
  url: string
  stop: () => Promise<void>
  start: () => Promise<void>
  answers: () => Promise<boolean>
}

export async function privateRedis (t: Teardown): Promise<PrivateRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const answers = async (): Promise<boolean> => {
    try {
      const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping'], { timeout: 2_000 })
      return stdout.trim() === 'PONG'
    } catch {
      return false
    }
  }
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    for (let i = 0; !await answers(); i++) {
      if (i > 200) throw new Error('private redis did not start')
      await sleep(25)
    }
  }
  const stop = async (): Promise<void> => {
    const c = child
    if (c === undefined || c.exitCode !== null) return
    const exited = new Promise(resolve => c.once('exit', resolve))
    c.kill('SIGKILL')
    await exited
  }
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, stop, start, answers }
}
