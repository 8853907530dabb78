import type { Scenario } from '../lib/context.js'
import { memRow } from '../lib/rows.js'

/** Scenario 8: the fresh instance's memory through scenario 6's series, against the bare ws server's. */
const memory: Scenario = {
  id: '8',
  name: 'memory',
  measures: 'VmRSS of a fresh instance: a idle, b with 1,000 idle subscribed sockets, c after scenario 6',
  baseline: 'the bare ws server at the same points',
  kind: 'fanout',
  run: async function memoryOfFanout (context) {
    const { rssFresh, one, base } = await context.fanout()
    return [
      memRow('8a', 'RSS idle (fresh instance)', rssFresh, base.rssIdle, null, { beforeSubscribers: one.rssIdle }),
      memRow('8b', 'RSS with 1,000 idle sockets', one.rss1000, base.rss1000, 150),
      memRow('8c', 'RSS after scenario 6', one.rssAfter, base.rssAfter, null)
    ]
  }
}
export default memory
