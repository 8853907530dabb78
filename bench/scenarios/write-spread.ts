import type autocannon from 'autocannon'
import type { BenchContext } from '../lib/context.js'
import { httpScenario, loadOn } from '../lib/http-load.js'
import { api, createWorkspace, freshKib, kib } from '../lib/seed.js'
import { log, sleep } from '../lib/util.js'

/**
 * Scenario 11: the writes of scenario 3 spread over 100 workspaces (no two connections share a
 * workspace's lock), against the same raw-pg route as 3 on 100 twin workspaces. Beside 3 it shows
 * what the workspace lock costs, and that group commit costs nothing where there is no contention.
 */

const WORKSPACES = 100
const CONNECTIONS = 50
const FILE = '/f.txt'

interface Spread {
  /** workspace ids: the project's and the baseline's */
  project: string[]
  baseline: string[]
  /** workspace id → its file's current etag */
  etags: Map<string, string>
}

let seeded: Promise<Spread> | undefined

/** 2 × 100 workspaces with one 1 KiB file each, made through the API on first use. */
async function seedSpread (context: BenchContext, token: string): Promise<Spread> {
  const base = context.project().base
  const etags = new Map<string, string>()
  const make = async (prefix: string): Promise<string[]> => {
    const ids: string[] = []
    for (let i = 0; i < WORKSPACES; i++) {
      const id = await createWorkspace(base, token, `${prefix}-${i}`)
      const r = await api<{ file: { etag: string } }>(base, 'PUT', `/v1/workspaces/${id}/files${FILE}`, token, { content: kib(`${prefix} ${i}`) }, 201)
      etags.set(id, r.file.etag)
      ids.push(id)
    }
    return ids
  }
  const spread = { project: await make('spread'), baseline: await make('spread-base'), etags }
  log(`11 seeded: ${2 * WORKSPACES} workspaces with one file each`)
  return spread
}

export default httpScenario({
  id: '11',
  name: 'write 1 KiB with If-Match, 100 workspaces',
  measures: `PUT …/files${FILE} in 100 workspaces, ${CONNECTIONS} connections; each connection owns two workspaces and sends the etag it last got`,
  baseline: 'the raw-pg route of scenario 3 (/s3), on 100 twin workspaces'
}, async function writeSpread ({ project, baseline, token }, context) {
  const spread = await (seeded ??= seedSpread(context, token))
  const auth = { authorization: `Bearer ${token}` }
  return {
    scenario: `write 1 KiB, If-Match, 100 workspaces, ${CONNECTIONS} conns`,
    unit: 'req/s',
    project: { label: 'project', prepare: resync(context, token, spread.project, spread.etags), load: s => loadOn(project, CONNECTIONS, s, spreadRequests(ws => `/v1/workspaces/${ws}/files${FILE}`, auth, spread.etags, spread.project)) },
    baseline: { label: 'bare Fastify + raw pg, same transaction', prepare: resync(context, token, spread.baseline, spread.etags), load: s => loadOn(baseline, CONNECTIONS, s, spreadRequests(ws => `/s3/${ws}${FILE}`, {}, spread.etags, spread.baseline)) },
    target: { min: 0.8 }
  }
})

/**
 * The etags as the database has them, read until two reads 300 ms apart agree (a run ends with
 * requests in flight). Through the tree, which the read cache does not serve: the baseline's
 * writes bypass the server, so a cached read of its files would be stale.
 */
function resync (context: BenchContext, token: string, workspaces: string[], into: Map<string, string>): () => Promise<void> {
  const read = async (): Promise<string> => {
    const tags = await Promise.all(workspaces.map(async ws => {
      const page = await api<{ entries: Array<{ path: string, etag: string }> }>(context.project().base, 'GET', `/v1/workspaces/${ws}/tree?path=%2F&depth=1&limit=10`, token, undefined, 200)
      return page.entries.find(e => e.path === FILE)?.etag ?? ''
    }))
    for (const [i, ws] of workspaces.entries()) into.set(ws, tags[i] ?? '')
    return tags.join(',')
  }
  return async function resyncSpread () {
    let before = await read()
    for (let i = 0; i < 50; i++) {
      await sleep(300)
      const now = await read()
      if (now === before) return
      before = now
    }
    throw new Error('11: etags still changing 15 s after the run')
  }
}

/** Each client owns two of the workspaces and alternates between them, with the etag it last got. */
function spreadRequests (urlOf: (ws: string) => string, headers: Record<string, string>, etags: Map<string, string>, workspaces: string[]): () => autocannon.Request[] {
  let next = 0
  return () => {
    const mine = [workspaces[(2 * next) % workspaces.length], workspaces[(2 * next + 1) % workspaces.length]].filter((w): w is string => w !== undefined)
    next++
    let turn = 0
    let current = ''
    return [{
      method: 'PUT',
      setupRequest: req => {
        current = mine[turn++ % mine.length] ?? ''
        return { ...req, path: urlOf(current), headers: { ...headers, 'content-type': 'application/json', 'if-match': `"${etags.get(current) ?? '0'}"` }, body: JSON.stringify({ content: freshKib('s') }) }
      },
      onResponse: (status, body) => {
        if (status !== 200) return
        etags.set(current, (JSON.parse(body) as { file: { etag: string } }).file.etag)
      }
    }]
  }
}
