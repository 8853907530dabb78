/** Seeding through the server's own API, so every row is exactly what the server writes. */

export interface User { id: string, email: string, token: string, sessionId: string }

export async function api<T> (base: string, method: string, path: string, token: string | undefined, body: unknown, expect: number): Promise<T> {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const init = { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }
  let res: Response
  try {
    res = await fetch(base + path, init)
  } catch (err) {
    // Sent on a kept-alive connection the server had just closed (idle past its 10 s; a seeding
    // step that reads files for longer blocks the client's loop, so it cannot notice in time):
    // the server never saw the request, so it is sent once more, on a new connection.
    if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err
    res = await fetch(base + path, init)
  }
  const text = await res.text()
  if (res.status !== expect) throw new Error(`${method} ${path}: expected ${expect}, got ${res.status} ${text.slice(0, 500)}`)
  return (text === '' ? {} : JSON.parse(text)) as T
}

const PASSWORD = 'bench password, not a secret'

export async function register (base: string): Promise<User> {
  const email = `bench-${process.pid}-${Date.now()}@example.com`
  const r = await api<{ user: { id: string }, accessToken: string, sessionId: string }>(base, 'POST', '/v1/auth/register', undefined, { email, password: PASSWORD }, 201)
  return { id: r.user.id, email, token: r.accessToken, sessionId: r.sessionId }
}

/** A fresh access token (they live 15 minutes; a full run can take longer than one). */
export async function login (base: string, user: User): Promise<string> {
  return (await api<{ accessToken: string }>(base, 'POST', '/v1/auth/login', undefined, { email: user.email, password: PASSWORD }, 200)).accessToken
}

export async function createWorkspace (base: string, token: string, name: string): Promise<string> {
  return (await api<{ id: string }>(base, 'POST', '/v1/workspaces', token, { name }, 201)).id
}

export interface Op { type: 'create' | 'mkdir', path: string, content?: string, encoding?: 'utf8' | 'base64' }
interface BatchReply { results: Array<{ data: { path?: string, etag?: string } }>, revision: number }

/** Applies operations in batches of 1,000; returns path → etag of every entry created. */
export async function batch (base: string, token: string, workspaceId: string, ops: Op[]): Promise<Map<string, string>> {
  const etags = new Map<string, string>()
  for (let i = 0; i < ops.length; i += 1000) {
    const r = await api<BatchReply>(base, 'POST', `/v1/workspaces/${workspaceId}/operations/batch`, token, { operations: ops.slice(i, i + 1000) }, 200)
    for (const { data } of r.results) if (data.path !== undefined && data.etag !== undefined) etags.set(data.path, data.etag)
  }
  return etags
}

/** 1 KiB of printable text, starting with `tag` so that contents (and blobs) differ. */
export function kib (tag: string): string {
  const filler = 'const workbench = "a 1 KiB file written by the benchmark";\n'
  return (tag + '\n' + filler.repeat(Math.ceil(1024 / filler.length))).slice(0, 1024)
}

let written = 0

/**
 * A 1 KiB content no earlier write of this run sent (as an edit's is): a write whose content is
 * already stored makes one statement more on both sides (the blob kept with FOR KEY SHARE), and
 * counters restarted with each round's load repeated the contents of the round before.
 */
export function freshKib (tag: string): string {
  return kib(`${tag} ${++written}`)
}

/** `/d00` … `/d99`, each with 99 files: 10,000 entries. */
export function treeOps (): Op[] {
  const ops: Op[] = []
  for (let d = 0; d < 100; d++) ops.push({ type: 'mkdir', path: `/d${String(d).padStart(2, '0')}` })
  for (let d = 0; d < 100; d++) {
    for (let f = 0; f < 99; f++) {
      const path = `/d${String(d).padStart(2, '0')}/f${String(f).padStart(2, '0')}.ts`
      ops.push({ type: 'create', path, content: `export const path = '${path}'\n` })
    }
  }
  return ops
}

/** Everything the scenarios read or write, as seeded by `seedBench`. */
export interface Seed {
  user: User
  /** a workspace id by name: read, write, writeBase, batch, batchBase, tree, fan (the …Base ones are the baselines') */
  workspace: (name: string) => string
  /** the API path of the 1 KiB file the read scenarios read */
  readPath: string
  /** that file as the API answers it (the HTTP baseline's /s1 answers the same) */
  entry: Record<string, unknown>
  /** the 100 paths of the write scenario, and their current etags in the project's and the baseline's workspace */
  writePaths: string[]
  etags: Map<string, string>
  baseEtags: Map<string, string>
  /** the first page of the 10,000-entry tree, and the cursors of its 10 pages ('' for the first) */
  treeBase: string
  cursors: string[]
}

/** Seeds, through the API: one user, a workspace per scenario (and one per writing baseline), the read file, 2 × 100 write files and a 10,000-entry tree. */
export async function seedBench (base: string): Promise<Seed> {
  const user = await register(base)
  const token = user.token
  const ws: Record<string, string> = {}
  for (const name of ['read', 'write', 'writeBase', 'batch', 'batchBase', 'tree', 'fan']) ws[name] = await createWorkspace(base, token, `bench-${name}`)
  const workspace = (name: string): string => ws[name] ?? ''
  const readPath = `/v1/workspaces/${workspace('read')}/files/bench/read.txt`
  await api(base, 'PUT', readPath, token, { content: kib('read') }, 201)
  const entry = await api<Record<string, unknown>>(base, 'GET', readPath, token, undefined, 200)
  const writePaths = Array.from({ length: 100 }, (_, i) => `/w/p${String(i).padStart(3, '0')}.txt`)
  const writeOps = writePaths.map(path => ({ type: 'create' as const, path, content: kib(path) }))
  const etags = await batch(base, token, workspace('write'), writeOps)
  const baseEtags = await batch(base, token, workspace('writeBase'), writeOps)
  await batch(base, token, workspace('tree'), treeOps())
  const treeBase = `/v1/workspaces/${workspace('tree')}/tree?path=%2F&depth=0&limit=1000`
  const cursors = await treeCursors(base, token, treeBase)
  return { user, workspace, readPath, entry, writePaths, etags, baseEtags, treeBase, cursors }
}

/** The cursors of the tree's pages, checking that it has 10 pages of 1,000. */
async function treeCursors (base: string, token: string, treeBase: string): Promise<string[]> {
  const cursors: string[] = ['']
  for (;;) {
    const last = cursors.at(-1) ?? ''
    const page = await api<{ entries: unknown[], nextCursor: string | null }>(base, 'GET', treeBase + (last === '' ? '' : `&cursor=${last}`), token, undefined, 200)
    if (page.entries.length !== 1000) throw new Error(`tree page of ${page.entries.length} entries, expected 1000`)
    if (page.nextCursor === null) break
    cursors.push(page.nextCursor)
  }
  if (cursors.length !== 10) throw new Error(`tree has ${cursors.length} pages, expected 10`)
  return cursors
}
