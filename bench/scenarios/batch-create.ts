import type autocannon from 'autocannon'
import { httpScenario, loadOn } from '../lib/http-load.js'
import { kib } from '../lib/seed.js'

/** Scenario 4: batches of 100 creates per request, against a bare route running the same statements. */
export default httpScenario({
  id: '4',
  name: 'batch of 100 creates per request',
  measures: 'POST …/operations/batch, 8 connections, 100 new 1 KiB files each; rate in files/s',
  baseline: 'bare route running the same statements per operation in one transaction (/s4)'
}, async function batchOfCreates ({ project, baseline, token }, { seed }) {
  // Every run (project or baseline) writes under a prefix of its own: its paths are all new.
  let run = 0
  return {
    scenario: 'batch of 100 creates, 8 conns',
    unit: 'files/s',
    project: { label: 'project', load: s => ({ ...loadOn(project, 8, s, batchRequests(`/v1/workspaces/${seed.workspace('batch')}/operations/batch`, { authorization: `Bearer ${token}` }, `p${run++}`)), unitsPerRequest: 100 }) },
    baseline: { label: 'bare Fastify + raw pg, same statements', load: s => ({ ...loadOn(baseline, 8, s, batchRequests(`/s4/${seed.workspace('batchBase')}`, {}, `b${run++}`)), unitsPerRequest: 100 }) },
    target: null
  }
})

/** POST a batch of 100 creates, each at a new path with its own 1 KiB content. */
function batchRequests (path: string, headers: Record<string, string>, prefix: string): () => autocannon.Request[] {
  let client = 0
  return () => {
    const me = client++
    let n = 0
    return [{
      method: 'POST',
      setupRequest: req => {
        const dir = `/b/${prefix}-${me}-${n++}`
        const operations = Array.from({ length: 100 }, (_, i) => ({ type: 'create', path: `${dir}/f${i}.txt`, content: kib(`${dir} ${i}`) }))
        return { ...req, path, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ operations }) }
      }
    }]
  }
}
