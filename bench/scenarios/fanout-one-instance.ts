import type { Scenario } from '../lib/context.js'
import { BATCH_SAT, RATE_100, RATE_1000, RATE_SAT } from '../lib/fan-series.js'
import { fanRow } from '../lib/rows.js'

/** Scenario 6: live fan-out through one instance, against a bare ws server broadcasting the same frames. */
const fanoutOneInstance: Scenario = {
  id: '6',
  name: 'live fan-out, one instance',
  measures: `WebSocket subscribers on one workspace and an open-loop writer of new 1 KiB files: a: 100 subscribers at ${RATE_100} writes/s, b: 1,000 at ${RATE_1000} writes/s, c: 1,000 at ${RATE_SAT} events/s offered in batches of ${BATCH_SAT}`,
  baseline: 'a bare ws server (bench/baseline-ws.ts) broadcasting frames built from a real event frame, on the same schedule, to the same sockets',
  kind: 'fanout',
  run: async function fanoutThroughOneInstance (context) {
    const { one, base } = await context.fanout()
    return [
      fanRow('6a', `fan-out, 100 subscribers, ${RATE_100} writes/s`, one.r100, base.r100, { p99Ratio: 1.5 }),
      fanRow('6b', `fan-out, 1,000 subscribers, ${RATE_1000} writes/s`, one.r1000, base.r1000, { p99Ratio: 1.5 }),
      fanRow('6c', `fan-out, 1,000 subscribers, ${RATE_SAT} events/s offered (${RATE_SAT / BATCH_SAT} batches of ${BATCH_SAT}/s; above the bare ws server's capacity)`, one.sat, base.sat, { ratio: 0.8 })
    ]
  }
}
export default fanoutOneInstance
