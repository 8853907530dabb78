import { get, httpScenario, loadOn } from '../lib/http-load.js'

/** Scenario 2: the same read on an instance without its caches, against a bare route running the same SQL. */
export default httpScenario({
  id: '2',
  name: 'read a 1 KiB file, cache off',
  measures: 'the same read on a second instance with CACHE_MAX_BYTES=0 and CACHE_REDIS=false (so every read runs its SQL), 50 connections',
  baseline: 'bare Fastify route running the same three statements with raw pg, same schema (/s2)'
}, async function readUncachedFile ({ baseline, token }, context) {
  const { seed } = context
  // In-process cache off, and its Redis layer too, so that every read runs the SQL the baseline runs.
  const C = await context.startServer('server, cache off', { CACHE_MAX_BYTES: '0', CACHE_REDIS: 'false' })
  return {
    scenario: 'read 1 KiB file, cache off',
    unit: 'req/s',
    project: { label: 'project', load: s => loadOn(C, 50, s, get(seed.readPath, token)) },
    baseline: { label: 'bare Fastify + raw pg, same SQL', load: s => loadOn(baseline, 50, s, get(`/s2/${seed.workspace('read')}/bench/read.txt`)) },
    target: { min: 0.7 },
    after: async () => { await context.stop(C); return undefined }
  }
})
