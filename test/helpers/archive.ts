import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import tarStream from 'tar-stream'
import yazl from 'yazl'
import { expectStatus, type BatchResult, type FileMeta, type Res } from './http.js'
import type { Ctx } from './files.js'
import { sha256 } from './files.js'

/** Archives as the test/archive tests use them: a project on disk, the routes, and tree digests. */

export interface DiskFile { rel: string, bytes: Buffer, executable: boolean }

/** The files and directories below `dir` (relative names, directories ending in `/`), sorted. */
export function readProject (dir: string): { files: DiskFile[], dirs: string[] } {
  const files: DiskFile[] = []
  const dirs: string[] = []
  const walk = (abs: string, rel: string): void => {
    for (const name of readdirSync(abs)) {
      const a = join(abs, name)
      const r = rel === '' ? name : `${rel}/${name}`
      const st = statSync(a)
      if (st.isDirectory()) {
        dirs.push(r + '/')
        walk(a, r)
      } else if (st.isFile()) {
        files.push({ rel: r, bytes: readFileSync(a), executable: (st.mode & 0o111) !== 0 })
      }
    }
  }
  walk(dir, '')
  return { files: files.sort((a, b) => a.rel.localeCompare(b.rel)), dirs: dirs.sort() }
}

/** Writes a project's files below `base` in batches (base64 content, executable flags). */
export async function writeProject (c: Ctx, base: string, files: DiskFile[]): Promise<void> {
  for (let i = 0; i < files.length; i += 500) {
    const ops = files.slice(i, i + 500).map(f => ({ type: 'create', path: `${base === '/' ? '' : base}/${f.rel}`, content: f.bytes.toString('base64'), encoding: 'base64', executable: f.executable }))
    expectStatus<BatchResult>(await c.batch(ops), 200, 'write project')
  }
}

export async function exportArchive (c: Ctx, query: Record<string, string | number> = {}): Promise<Res> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
  return await c.send('GET', `/v1/workspaces/${c.ws}/archive${qs === '' ? '' : '?' + qs}`)
}

export async function importArchive (c: Ctx, body: Buffer, opts: { path?: string, type?: string, headers?: Record<string, string> } = {}): Promise<Res> {
  const qs = opts.path === undefined ? '' : `?path=${encodeURIComponent(opts.path)}`
  return await c.send('POST', `/v1/workspaces/${c.ws}/archive${qs}`, body, { 'content-type': opts.type ?? 'application/octet-stream', ...opts.headers })
}

/** Every entry of the workspace as `path kind sha256 executable` lines: equal trees, equal digests. */
export async function treeDigest (c: Ctx, path = '/'): Promise<string[]> {
  const entries: FileMeta[] = (await c.tree(path, 0, 5000)).entries
  return entries.map(e => `${e.path.slice(path === '/' ? 0 : path.length)} ${e.kind} ${e.sha256 ?? '-'} ${e.executable ? 'x' : '-'}`).sort()
}

/** The digest lines a project on disk would give below `base`. */
export function projectDigest (p: { files: DiskFile[], dirs: string[] }): string[] {
  return [
    ...p.files.map(f => `/${f.rel} file ${sha256(f.bytes)} ${f.executable ? 'x' : '-'}`),
    ...p.dirs.map(d => `/${d.slice(0, -1)} directory - -`)
  ].sort()
}

/** A tar made with tar-stream from entries as given (any name, any type: hostile ones too). */
export async function makeTar (entries: Array<Partial<tarStream.Header> & { name: string, body?: Buffer }>): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  const read = (async () => { for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array)) })()
  for (const { body, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => { if (err == null) resolve(); else reject(err) }
      if (body === undefined) pack.entry(header, done)
      else pack.entry(header, body, done)
    })
  }
  pack.finalize()
  await read
  return Buffer.concat(chunks)
}

/** A zip made with yazl (file entries by default; `mode` as given, e.g. a symlink's 0o120777). */
export async function makeZip (entries: Array<{ name: string, body?: Buffer, mode?: number, dir?: boolean, compress?: boolean }>): Promise<Buffer> {
  const zip = new yazl.ZipFile()
  for (const e of entries) {
    if (e.dir === true) zip.addEmptyDirectory(e.name)
    else zip.addBuffer(e.body ?? Buffer.alloc(0), e.name, { ...(e.mode === undefined ? {} : { mode: e.mode }), compress: e.compress ?? true })
  }
  zip.end()
  const chunks: Buffer[] = []
  for await (const c of zip.outputStream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** Every occurrence of `from` in `buf` replaced by `to` (same length): a name yazl would refuse, patched in. */
export function patch (buf: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('patch: lengths differ')
  const out = Buffer.from(buf)
  const f = Buffer.from(from)
  for (let i = out.indexOf(f); i !== -1; i = out.indexOf(f, i + 1)) out.write(to, i, 'latin1')
  return out
}

/** A stream of `n` zero bytes, 1 MiB at a time (a bomb is never whole in memory). */
export function zeros (n: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024)
  let left = n
  return new Readable({
    read () {
      if (left <= 0) { this.push(null); return }
      const k = Math.min(left, chunk.length)
      left -= k
      this.push(k === chunk.length ? chunk : chunk.subarray(0, k))
    }
  })
}

/** A gzipped tar of one file of `n` zero bytes (a gzip bomb), made without holding `n` bytes. */
export async function gzipBomb (n: number): Promise<Buffer> {
  const pack = tarStream.pack()
  const gz = createGzip({ level: 9 })
  const chunks: Buffer[] = []
  const out = (async () => { for await (const c of gz) chunks.push(c as Buffer) })()
  const piping = pipeline(Readable.from(pack), gz)
  let written: () => void = () => {}
  const done = new Promise<void>(resolve => { written = resolve })
  const sink = pack.entry({ name: 'zeros.bin', size: n }, () => { written() })
  for await (const chunk of zeros(n)) {
    if (!sink.write(chunk as Buffer)) await new Promise<void>(resolve => { sink.once('drain', () => { resolve() }) })
  }
  sink.end(Buffer.alloc(0))
  await done
  pack.finalize()
  await piping
  await out
  return Buffer.concat(chunks)
}

/** A zip of one entry of `n` zero bytes, deflated (a zip bomb), made without holding `n` bytes. */
export async function zipBomb (n: number): Promise<Buffer> {
  const zip = new yazl.ZipFile()
  zip.addReadStream(zeros(n), 'zeros.bin', { size: n })
  zip.end()
  const chunks: Buffer[] = []
  for await (const c of zip.outputStream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}
