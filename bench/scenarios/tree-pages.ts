import type autocannon from 'autocannon'
import { httpScenario, loadOn } from '../lib/http-load.js'

/** Scenario 5: the pages of a 10,000-entry tree, against a bare route running the same SQL. */
export default httpScenario({
  id: '5',
  name: 'tree of a 10,000-entry workspace, page size 1,000',
  measures: 'GET …/tree?path=/&depth=0&limit=1000[&cursor=], cycling over the 10 pages, 10 connections',
  baseline: 'same SQL with raw pg and the same TreeResult schema (/s5)'
}, async function treeInPages ({ project, baseline, token }, { seed }) {
  const { cursors, treeBase, workspace } = seed
  const page = (c: string): string => c === '' ? '' : `&cursor=${c}`
  return {
    scenario: 'tree of 10,000 entries, pages of 1,000, 10 conns',
    unit: 'req/s',
    project: { label: 'project', load: s => loadOn(project, 10, s, cycle(cursors.map(c => treeBase + page(c)), { authorization: `Bearer ${token}` })) },
    baseline: { label: 'bare Fastify + raw pg, same SQL', load: s => loadOn(baseline, 10, s, cycle(cursors.map(c => `/s5/${workspace('tree')}?limit=1000` + page(c)), {})) },
    target: null
  }
})

/** GETs cycling over `paths`, shared by every client. */
function cycle (paths: string[], headers: Record<string, string>): () => autocannon.Request[] {
  let k = 0
  return () => [{ method: 'GET', setupRequest: req => ({ ...req, path: paths[k++ % paths.length] ?? '/', headers }) }]
}
