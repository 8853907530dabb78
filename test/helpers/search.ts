import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import type { Static } from '@sinclair/typebox'
import type * as search from '../../schemas/search.js'
import { ROOT_DIR, type Teardown } from './app.js'
import { expectStatus, type Wire } from './http.js'
import type { Ctx } from './files.js'
import { sha256 } from './files.js'
import { ancestorsOf, depthOf, parentOf } from '../../src/files/paths.js'

/** Search tests: a real corpus in a workspace and on disk, and ripgrep's answers on the disk copy. */

export type SearchResult = Wire<Static<typeof search.SearchResult>>
export type SearchMatch = Wire<Static<typeof search.SearchMatch>>
export type FindResult = Wire<Static<typeof search.FindResult>>

const exec = promisify(execFile)

/** `.d.ts` files from node_modules (TypeScript's lib and Node's types first), path → content. */
export function corpus (maxFiles: number, maxBytes: number): Map<string, string> {
  const base = join(ROOT_DIR, 'node_modules')
  const found: string[] = []
  const walk = (dir: string): void => {
    let names: string[]
    try { names = readdirSync(join(base, dir)).sort() } catch { return }
    for (const name of names) {
      const rel = dir === '' ? name : `${dir}/${name}`
      const st = statSync(join(base, rel), { throwIfNoEntry: false })
      if (st === undefined) continue
      if (st.isDirectory()) walk(rel)
      else if (name.endsWith('.d.ts') && st.size <= 512 * 1024) found.push(rel)
    }
  }
  walk('')
  const first = found.filter(p => p.startsWith('typescript/lib/') || p.startsWith('@types/node/'))
  const rest = found.filter(p => !first.includes(p))
  const files = new Map<string, string>()
  let bytes = 0
  for (const rel of [...first, ...rest]) {
    if (files.size >= maxFiles) break
    const content = readFileSync(join(base, rel), 'utf8')
    if (bytes + content.length > maxBytes) continue
    bytes += content.length
    files.set(`/${rel}`, content)
  }
  return files
}

/** Writes the files through the batch API, `perBatch` creates a request. */
export async function writeAll (c: Ctx, files: Map<string, string>, perBatch = 1000): Promise<number> {
  const entries = [...files]
  let revision = 0
  for (let i = 0; i < entries.length; i += perBatch) {
    const ops = entries.slice(i, i + perBatch).map(([path, content]) => ({ type: 'create', path, content }))
    revision = expectStatus<{ revision: number }>(await c.batch(ops), 200, `batch ${i}`).revision
  }
  return revision
}

/**
 * Writes the files straight into the tables, as the write path records them (blobs, entries, one
 * change with its history entry per created file or directory), in one transaction: thousands of
 * files in a few seconds, where the batch API takes about 9 ms a file. Returns the new revision.
 */
export async function insertAll (c: Ctx, files: Map<string, string | Buffer>): Promise<number> {
  const userId = c.user.id
  return await c.app.db.transaction().execute(async trx => {
    const ws = await trx.selectFrom('workspaces').select('revision').where('id', '=', c.ws).forUpdate().executeTakeFirstOrThrow()
    const existing = new Set((await trx.selectFrom('files').select('path').where('workspace_id', '=', c.ws).execute()).map(r => r.path))
    const blobs = new Map<string, Buffer>()
    const entries: Array<{ path: string, kind: 'file' | 'directory', sha: string | null, size: number | null }> = []
    for (const [path, content] of files) {
      for (const dir of ancestorsOf(path)) {
        if (dir === '/' || existing.has(dir)) continue
        existing.add(dir)
        entries.push({ path: dir, kind: 'directory', sha: null, size: null })
      }
      const bytes = typeof content === 'string' ? Buffer.from(content) : content
      const sha = sha256(bytes)
      blobs.set(sha, bytes)
      existing.add(path)
      entries.push({ path, kind: 'file', sha, size: bytes.length })
    }
    const blobRows = [...blobs].map(([sha, bytes]) => ({ sha256: sha, size: bytes.length, content: bytes }))
    for (let i = 0; i < blobRows.length; i += 200) {
      await trx.insertInto('blobs').values(blobRows.slice(i, i + 200)).onConflict(oc => oc.column('sha256').doNothing()).execute()
    }
    const at = new Date().toISOString()
    const rows = entries.map((e, i) => ({ ...e, revision: ws.revision + 1 + i }))
    for (let i = 0; i < rows.length; i += 1000) {
      const part = rows.slice(i, i + 1000)
      const mime = (e: typeof rows[number]): string | null => e.kind === 'file' ? 'text/plain' : null
      await trx.insertInto('files').values(part.map(e => ({
        workspace_id: c.ws,
        path: e.path,
        parent: parentOf(e.path),
        depth: depthOf(e.path),
        kind: e.kind,
        blob_sha256: e.sha,
        size: e.size,
        mime_type: mime(e),
        metadata: '{}',
        etag: e.revision,
        created_by: userId,
        updated_by: userId
      }))).execute()
      await trx.insertInto('changes').values(part.map(e => ({
        workspace_id: c.ws,
        revision: e.revision,
        op: 'create' as const,
        kind: e.kind,
        path: e.path,
        new_path: null,
        etag: e.revision,
        version: 1,
        sha256: e.sha,
        size: e.size,
        user_id: userId,
        session_id: null,
        op_id: null
      }))).execute()
      await trx.insertInto('change_entries').values(part.map(e => ({
        workspace_id: c.ws,
        revision: e.revision,
        seq: 0,
        path_before: null,
        path_after: e.path,
        before: null,
        sha_before: null,
        sha_after: e.sha,
        after: JSON.stringify({ kind: e.kind, sha256: e.sha, size: e.size, mimeType: mime(e), metadata: {}, version: 1, etag: e.revision, createdAt: at, createdBy: userId, updatedAt: at, updatedBy: userId })
      }))).execute()
    }
    const head = ws.revision + rows.length
    await trx.updateTable('workspaces').set({ revision: head }).where('id', '=', c.ws).execute()
    return head
  })
}

/** The same files in a temporary folder (removed when the test ends). */
export function exportToDisk (t: Teardown, files: Map<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-search-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  for (const [path, content] of files) {
    const file = join(dir, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, content)
  }
  return dir
}

export interface RgMatch { path: string, line: number }

/** ripgrep's matching lines (`--json`), as `/path:line` keys, with its context lines as `/path:line` too. */
export async function rg (dir: string, args: string[], paths: string[] = []): Promise<{ matches: Set<string>, context: Set<string>, columns: Map<string, number[]> }> {
  const { stdout } = await exec('rg', ['--json', '--no-config', '--no-ignore', '--hidden', '--max-filesize', '1M', ...args, '--', ...(paths.length === 0 ? ['.'] : paths)], {
    cwd: dir, maxBuffer: 1024 * 1024 * 1024
  }).catch((err: { code?: number, stdout?: string, stderr?: string }) => {
    // exit 1: no match
    if (err.code === 1) return { stdout: err.stdout ?? '' }
    throw new Error(`rg ${args.join(' ')} failed: ${err.stderr ?? ''}`)
  })
  const matches = new Set<string>()
  const context = new Set<string>()
  const columns = new Map<string, number[]>()
  for (const line of stdout.split('\n')) {
    if (line === '') continue
    const msg = JSON.parse(line) as { type: string, data: { path?: { text?: string }, line_number?: number, lines?: { text?: string }, submatches?: Array<{ start: number, end: number }> } }
    if (msg.type !== 'match' && msg.type !== 'context') continue
    const key = `/${(msg.data.path?.text ?? '').replace(/^\.\//, '')}:${msg.data.line_number ?? 0}`
    if (msg.type === 'context') { context.add(key); continue }
    matches.add(key)
    // submatch byte offsets → UTF-16 columns (1-based)
    const text = Buffer.from(msg.data.lines?.text ?? '', 'utf8')
    columns.set(key, (msg.data.submatches ?? []).map(s => text.subarray(0, s.start).toString('utf8').length + 1))
  }
  return { matches, context, columns }
}

export async function searchApi (c: Ctx, body: Record<string, unknown>): Promise<SearchResult> {
  return expectStatus<SearchResult>(await c.send('POST', `/v1/workspaces/${c.ws}/search`, body), 200, `search ${JSON.stringify(body)}`)
}

/** The (path, line) keys of an answer's matches. */
export const lineKeys = (r: SearchResult): Set<string> => new Set(r.matches.map(m => `${m.path}:${m.line}`))

/** What differs between two key sets, a few of each side, for a readable failure. */
export function diff (ours: Set<string>, theirs: Set<string>): { onlyOurs: string[], onlyRg: string[] } {
  return { onlyOurs: [...ours].filter(k => !theirs.has(k)).slice(0, 5), onlyRg: [...theirs].filter(k => !ours.has(k)).slice(0, 5) }
}
