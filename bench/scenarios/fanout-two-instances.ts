import type { Scenario } from '../lib/context.js'
import { fanSeries, RATE_100, RATE_1000, RATE_SAT, wsUrl } from '../lib/fan-series.js'
import { fanRow } from '../lib/rows.js'
import { log } from '../lib/util.js'
import { putFiles } from '../lib/ws-load.js'

/** Scenario 7: scenario 6 across two instances, the events crossing Redis. */
const fanoutTwoInstances: Scenario = {
  id: '7',
  name: 'the same across two instances',
  measures: '2 instances (Redis pub/sub between them), half the subscribers on each, writes to the first',
  baseline: 'the same bare ws runs as scenario 6',
  kind: 'fanout',
  run: async function fanoutThroughTwoInstances (context) {
    const { agent, subs, target, base } = await context.fanout()
    log('fan-out through the server: 2 instances, half the subscribers on each, writes to the first')
    const A = context.project()
    const token = await context.token()
    const A2 = await context.startServer('server A2')
    const sub = { token, workspaceId: context.seed.workspace('fan') }
    const two = await fanSeries(context.settings, {
      label: 's7',
      rssPid: A2.pid,
      serverPids: [A.pid, A2.pid],
      subs,
      connect: async n => {
        await subs.connect(wsUrl(A.base), n / 2, sub)
        await subs.connect(wsUrl(A2.base), n / 2, sub)
      },
      fire: async paths => await putFiles(agent, { ...target, token }, paths)
    })
    await context.stop(A2)
    return [
      fanRow('7a', `fan-out via Redis, 2 instances, 100 subscribers, ${RATE_100} writes/s`, two.r100, base.r100, null),
      fanRow('7b', `fan-out via Redis, 2 instances, 1,000 subscribers, ${RATE_1000} writes/s`, two.r1000, base.r1000, null),
      fanRow('7c', `fan-out via Redis, 2 instances, 1,000 subscribers, ${RATE_SAT} events/s offered`, two.sat, base.sat, null)
    ]
  }
}
export default fanoutTwoInstances
