import { get, httpScenario, loadOn } from '../lib/http-load.js'

/**
 * Scenario 1r: what ACTIVITY_LOG_READS=true costs. Scenario 1's cache-hit read on a second
 * instance with the option on (every read queued as an activity entry, written in batches),
 * against the same read on the first instance, where it is off (the default). Same run, same
 * database, alternating rounds.
 */
export default httpScenario({
  id: '1r',
  name: 'read a 1 KiB file, cache hit, ACTIVITY_LOG_READS=true',
  measures: 'scenario 1\'s read on a second instance with ACTIVITY_LOG_READS=true, 50 connections',
  baseline: 'the same read on the first instance, ACTIVITY_LOG_READS off (the default)'
}, async function readLogged ({ project, token }, context) {
  const { seed } = context
  const L = await context.startServer('server, reads logged', { ACTIVITY_LOG_READS: 'true' })
  return {
    scenario: 'read 1 KiB file, cache hit, reads logged',
    unit: 'req/s',
    project: { label: 'ACTIVITY_LOG_READS=true', load: s => loadOn(L, 50, s, get(seed.readPath, token)) },
    baseline: { label: 'ACTIVITY_LOG_READS off', load: s => loadOn(project, 50, s, get(seed.readPath, token)) },
    target: null,
    after: async () => { await context.stop(L); return undefined }
  }
})
