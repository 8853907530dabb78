import type autocannon from 'autocannon'
import type { BenchContext } from '../lib/context.js'
import { histogramTotals, httpScenario, loadOn } from '../lib/http-load.js'
import { api, freshKib } from '../lib/seed.js'
import { log, round, sleep } from '../lib/util.js'

/** Scenario 3: conditional writes of 1 KiB files, against a bare route running the same transaction. */
export default httpScenario({
  id: '3',
  name: 'write 1 KiB with If-Match',
  measures: 'PUT …/files/w/pNNN.txt, 100 paths, 50 connections; each connection owns two paths and sends the etag it last got',
  baseline: 'bare Fastify route running the same transaction with raw pg, on a twin workspace (/s3)'
}, async function writeWithIfMatch ({ project, baseline, token }, context) {
  const { workspace, etags, baseEtags, writePaths } = context.seed
  const auth = { authorization: `Bearer ${token}` }
  const before = await histogramTotals(project, 'workbench_group_commit_size')
  const statementsBefore = await histogramTotals(project, 'workbench_db_query_duration_seconds')
  const requestsBefore = await histogramTotals(project, 'http_request_duration_seconds')
  return {
    scenario: 'write 1 KiB, If-Match, 100 paths, 50 conns',
    unit: 'req/s',
    project: { label: 'project', prepare: resync(context, token, 'write', etags), load: s => loadOn(project, 50, s, writeRequests(p => `/v1/workspaces/${workspace('write')}/files${p}`, auth, etags, writePaths)) },
    baseline: { label: 'bare Fastify + raw pg, same transaction', prepare: resync(context, token, 'writeBase', baseEtags), load: s => loadOn(baseline, 50, s, writeRequests(p => `/s3/${workspace('writeBase')}${p}`, {}, baseEtags, writePaths)) },
    target: { min: 0.7 },
    after: async () => {
      // How many requests each transaction ran (group commit), over the project's runs and warm-ups.
      const now = await histogramTotals(project, 'workbench_group_commit_size')
      const transactions = now.count - before.count
      const mean = transactions === 0 ? 0 : round((now.sum - before.sum) / transactions, 1)
      const buckets = Object.fromEntries(Object.entries(now.buckets).map(([le, n]) => [le, n - (before.buckets[le] ?? 0)]))
      const statements = await histogramTotals(project, 'workbench_db_query_duration_seconds')
      const requests = (await histogramTotals(project, 'http_request_duration_seconds')).count - requestsBefore.count
      const perRequest = round((statements.count - statementsBefore.count) / requests, 1)
      const statementMs = round(1000 * (statements.sum - statementsBefore.sum) / (statements.count - statementsBefore.count), 2)
      log(`3 group commit: ${transactions} transactions, ${mean} requests each on average; cumulative by size ${JSON.stringify(buckets)}; ${perRequest} statements per request, ${statementMs} ms each on average`)
      return { groupCommit: { transactions, meanSize: mean, cumulativeBySize: buckets }, statementsPerRequest: perRequest, meanStatementMs: statementMs }
    }
  }
})

/**
 * The current etags, as the tree lists them: an autocannon run ends with requests in flight whose
 * answers (and new etags) it never reads. Those requests still commit after the run: read until
 * two reads 300 ms apart agree.
 */
function resync (context: BenchContext, token: string, workspace: string, into: Map<string, string>): () => Promise<void> {
  const read = async (): Promise<string> => {
    const path = `/v1/workspaces/${context.seed.workspace(workspace)}/tree?path=%2Fw&depth=1&limit=1000`
    const page = await api<{ entries: Array<{ path: string, etag: string }> }>(context.project().base, 'GET', path, token, undefined, 200)
    for (const e of page.entries) into.set(e.path, e.etag)
    return page.entries.map(e => e.etag).join(',')
  }
  return async function resyncEtags () {
    let before = await read()
    for (let i = 0; i < 50; i++) {
      await sleep(300)
      const now = await read()
      if (now === before) return
      before = now
    }
    throw new Error(`${workspace}: etags still changing 15 s after the run`)
  }
}

/** PUT with If-Match: each of the `connections` clients owns two of the 100 paths and tracks their etags. */
function writeRequests (urlOf: (path: string) => string, headers: Record<string, string>, etags: Map<string, string>, paths: string[]): () => autocannon.Request[] {
  let next = 0
  return () => {
    const mine = [paths[(2 * next) % paths.length], paths[(2 * next + 1) % paths.length]].filter((p): p is string => p !== undefined)
    next++
    let turn = 0
    return [{
      method: 'PUT',
      setupRequest: req => {
        const path = mine[turn++ % mine.length] ?? ''
        return { ...req, path: urlOf(path), headers: { ...headers, 'content-type': 'application/json', 'if-match': `"${etags.get(path) ?? '0'}"` }, body: JSON.stringify({ content: freshKib('w') }) }
      },
      onResponse: (status, body) => {
        if (status !== 200) return
        const file = (JSON.parse(body) as { file: { path: string, etag: string } }).file
        etags.set(file.path, file.etag)
      }
    }]
  }
}
