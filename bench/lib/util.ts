import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'

/** Small helpers shared by the benchmark runner: timing, percentiles, processes, CPU pinning. */

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '')

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Progress on stderr, so that stdout carries only the results table. */
export function log (message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

export interface Latency {
  p50: number
  p95: number
  p99: number
  max: number
  count: number
}

/** Exact percentiles (nearest rank) of the first `n` values; sorts a copy. */
export function latency (values: ArrayLike<number>, n = values.length): Latency {
  const sorted = Float64Array.from({ length: n }, (_, i) => values[i] ?? 0).sort()
  const at = (p: number): number => n === 0 ? 0 : sorted[Math.min(n - 1, Math.max(0, Math.ceil(p / 100 * n) - 1))] ?? 0
  return { p50: round(at(50)), p95: round(at(95)), p99: round(at(99)), max: round(at(100)), count: n }
}

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits))

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length === 0 ? 0 : s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

/** Two cores or more and taskset present: server on core 0, load generator on core 1. */
export const PIN = availableParallelism() >= 2 && hasCommand('taskset')
export const SERVER_CPU = '0'
export const LOADER_CPU = '1'

export function hasCommand (name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Moves every thread of this process to the load generator's core. */
export function pinSelf (): void {
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', LOADER_CPU, String(process.pid)], { stdio: 'ignore' })
}

/** A command line, prefixed with `taskset -c <server core>` when pinning. */
export function pinned (args: string[]): [string, string[]] {
  const [cmd, ...rest] = args
  if (cmd === undefined) throw new Error('empty command')
  return PIN ? ['taskset', ['-c', SERVER_CPU, cmd, ...rest]] : [cmd, rest]
}

/** Resident set size in bytes, from /proc/<pid>/status (VmRSS). */
export function rssBytes (pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  if (kb === undefined) throw new Error(`no VmRSS for ${pid}`)
  return Number(kb) * 1024
}

/** User + system CPU seconds a process has used (clock ticks are 1/100 s on Linux). */
export function cpuSeconds (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** CPU use of a process over a window, in percent of one core. */
export function cpuMeter (pid: number): () => number {
  const c0 = cpuSeconds(pid)
  const t0 = performance.now()
  return () => Math.round(100 * (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000))
}

/** This process's CPU over a window, in percent of one core. */
export function selfCpuMeter (): () => number {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  return () => {
    const c = process.cpuUsage(c0)
    return Math.round((c.user + c.system) / 10 / (performance.now() - t0))
  }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}

/** The V8 flags `npm start` runs the server with (package.json), so the bench measures the same. */
const NODE_FLAGS = ['--max-semi-space-size=4']
/** And the environment it sets (package.json `start`: glibc's allocator returns freed large blocks). */
export const START_ENV = { MALLOC_MMAP_THRESHOLD_: '1048576' }

/** How to start the server: the built dist when it is at least as new as the sources, else tsx. */
export function serverCommand (): { args: string[], kind: 'dist' | 'tsx' } {
  const dist = join(ROOT, 'dist/src/server.js')
  if (existsSync(dist)) {
    const built = statSync(dist).mtimeMs
    const newest = Math.max(...['src', 'plugins', 'routes', 'schemas', 'sql'].map(d => newestMtime(join(ROOT, d))))
    if (newest <= built + 1000) return { args: [...NODE_FLAGS, dist], kind: 'dist' }
  }
  return { args: [...NODE_FLAGS, '--import', 'tsx', join(ROOT, 'src/server.ts')], kind: 'tsx' }
}

function newestMtime (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

export interface Proc {
  name: string
  pid: number
  base: string
  output: () => string
  stop: () => Promise<void>
}

/**
 * Starts a Node process on the server core and waits until `readyPath` answers 200 on `port`.
 * Its output is kept (and shown if it dies); it is stopped with SIGTERM, then SIGKILL.
 */
export async function startProcess (name: string, nodeArgs: string[], env: Record<string, string>, port: number, readyPath: string): Promise<Proc> {
  return await startCommand(name, [process.execPath, ...nodeArgs], env, port, readyPath)
}

/** The same for any command (e.g. a peer server): `PORT` and `HOST` are set, the command line must use them. */
export async function startCommand (name: string, argv: string[], env: Record<string, string>, port: number, readyPath: string): Promise<Proc> {
  const [cmd, args] = pinned(argv)
  const child: ChildProcess = spawn(cmd, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-20_000) })
  child.stderr?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-20_000) })
  let running = true
  const exited = new Promise<void>(resolve => child.once('exit', () => { running = false; resolve() }))
  const pid = child.pid
  if (pid === undefined) throw new Error(`${name}: spawn failed`)
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (!running) throw new Error(`${name} exited before it was ready:\n${output}`)
    try {
      const res = await fetch(base + readyPath)
      await res.arrayBuffer()
      if (res.status === 200) break
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} not ready in 60 s:\n${output}`)
    }
    await sleep(100)
  }
  return {
    name,
    pid,
    base,
    output: () => output,
    stop: async () => {
      if (!running) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
      await exited
      clearTimeout(timer)
    }
  }
}
