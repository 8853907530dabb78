/** Seeding through the server's own API, so every row is exactly what the server writes. */

export interface User { id: string, email: string, token: string, sessionId: string }

export async function api<T> (base: string, method: string, path: string, token: string | undefined, body: unknown, expect: number): Promise<T> {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(base + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
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

export interface Op { type: 'create' | 'mkdir', path: string, content?: string }
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
