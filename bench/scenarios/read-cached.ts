import { get, httpScenario, loadOn } from '../lib/http-load.js'

/** Scenario 1: a 1 KiB file read from the cache, against a bare route answering the same JSON. */
export default httpScenario({
  id: '1',
  name: 'read a 1 KiB file, cache hit',
  measures: 'GET /v1/workspaces/{id}/files/bench/read.txt, 50 connections, default config (in-process LRU + Redis layer)',
  baseline: 'bare Fastify route returning the same JSON object with the same Entry response schema (/s1)'
}, async function readCachedFile ({ project, baseline, token }, { seed }) {
  return {
    scenario: 'read 1 KiB file, cache hit',
    unit: 'req/s',
    project: { label: 'project', load: s => loadOn(project, 50, s, get(seed.readPath, token)) },
    baseline: { label: 'bare Fastify, same JSON + schema', load: s => loadOn(baseline, 50, s, get('/s1')) },
    target: { min: 0.8 }
  }
})
