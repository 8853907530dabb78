import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { api, batch, createWorkspace, login, type User } from './seed.js'
import { log, ROOT } from './util.js'

/**
 * The search scenarios' workspace: 10,000 real source files (≈ 40 MB) from node_modules
 * (.ts, .js, .md, .json…), written through the batch API, then read back as the tree and
 * exported to a folder for rg: the folder holds exactly the workspace's files (checked by sha256).
 */

export const SEARCH_FILES = 10_000
const TARGET_BYTES = 40 * 1024 * 1024
const MAX_FILE = 256 * 1024
const EXTENSIONS = /\.(ts|mts|cts|js|mjs|cjs|md|json)$/

export interface SearchCorpus {
  workspace: string
  /** the exported folder (removed by `cleanup`) */
  dir: string
  files: number
  bytes: number
  cleanup: () => void
}

/** Source files of node_modules, sorted, spread so that 10,000 of them make about 40 MB. */
function pick (): Array<[string, Buffer]> {
  const base = join(ROOT, 'node_modules')
  const all: Array<[string, number]> = []
  const walk = (dir: string): void => {
    let names: string[]
    try { names = readdirSync(join(base, dir)).sort() } catch { return }
    for (const name of names) {
      if (name === '.bin' || name === '.cache') continue
      const rel = dir === '' ? name : `${dir}/${name}`
      const st = statSync(join(base, rel), { throwIfNoEntry: false })
      if (st === undefined) continue
      if (st.isDirectory()) walk(rel)
      else if (EXTENSIONS.test(name) && st.size > 0 && st.size <= MAX_FILE) all.push([rel, st.size])
    }
  }
  walk('')
  const chosen: Array<[string, Buffer]> = []
  let bytes = 0
  for (const [rel, size] of all) {
    if (chosen.length >= SEARCH_FILES) break
    // keep the running mean near 4 KiB a file
    if (bytes + size > TARGET_BYTES * (chosen.length + 1) / SEARCH_FILES + 1024 * 1024) continue
    chosen.push([`/${rel}`, readFileSync(join(base, rel))])
    bytes += size
  }
  return chosen
}

export async function seedSearch (base: string, user: User): Promise<SearchCorpus> {
  const token = await login(base, user)
  const workspace = await createWorkspace(base, token, 'bench-search')
  const files = pick()
  const bytes = files.reduce((n, [, b]) => n + b.length, 0)
  const t0 = performance.now()
  // base64 for every file: node_modules has a few that are not UTF-8, which a utf8 body would change
  await batch(base, token, workspace, files.map(([path, b]) => ({ type: 'create' as const, path, content: b.toString('base64'), encoding: 'base64' as const })))
  log(`search corpus: ${files.length} files, ${(bytes / 1048576).toFixed(1)} MB written in ${Math.round(performance.now() - t0)} ms`)
  // Export: the tree as the server has it, each file's bytes checked against its sha256.
  const shas = new Map<string, string>()
  let cursor: string | null = ''
  while (cursor !== null) {
    const page: { entries: Array<{ path: string, kind: string, sha256: string | null }>, nextCursor: string | null } = await api(base, 'GET',
      `/v1/workspaces/${workspace}/tree?path=%2F&depth=0&limit=5000${cursor === '' ? '' : `&cursor=${cursor}`}`, token, undefined, 200)
    for (const e of page.entries) if (e.kind === 'file' && e.sha256 !== null) shas.set(e.path, e.sha256)
    cursor = page.nextCursor
  }
  const dir = mkdtempSync(join(tmpdir(), 'wb-bench-search-'))
  const cleanup = (): void => { rmSync(dir, { recursive: true, force: true }) }
  process.once('exit', cleanup)
  for (const [path, content] of files) {
    if (shas.get(path) !== createHash('sha256').update(content).digest('hex')) throw new Error(`export: ${path} differs from the workspace`)
    const file = join(dir, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, content)
  }
  if (shas.size !== files.length) throw new Error(`export: the workspace has ${shas.size} files, expected ${files.length}`)
  return { workspace, dir, files: files.length, bytes, cleanup }
}
