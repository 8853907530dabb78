import type { FanoutShared } from './fan-series.js'
import type { Row } from './rows.js'
import type { Seed } from './seed.js'
import type { Proc } from './util.js'

/** What bench/run.ts gives every scenario, and what every module of bench/scenarios exports. */

/** Run lengths: short with --ci, longer in the full run. */
export interface Settings {
  /**
   * HTTP: project/baseline rounds (alternating, ABBA…), each run after a warm-up run: `warmFirst`
   * seconds in the first round (V8 optimises a server's hot paths over its first seconds of load),
   * `warm` in the later ones
   */
  rounds: number
  warmFirst: number
  warm: number
  seconds: number
  /** fan-out: seconds of the latency phases and of the saturation phase */
  latSeconds: number
  satSeconds: number
  /** fan-out: after the last write, deliveries are awaited until none has come for this long */
  stallMs: number
}

export interface BenchContext {
  readonly settings: Settings
  /** the workspaces, files and tree seeded through the API before any scenario */
  readonly seed: Seed
  /** the project server in use: the seeded instance, then a fresh one once the fan-out starts */
  project: () => Proc
  /** stops the project server and starts a fresh one in its place */
  restartProject: (name: string) => Promise<Proc>
  /** a fresh access token from the project server (they live 15 minutes; a full run can take longer) */
  token: () => Promise<string>
  /** another instance of the server (same flags and settings), with `env` added */
  startServer: (name: string, env?: Record<string, string>) => Promise<Proc>
  /** any Node process, ready once `readyPath` answers 200; stopped at the end of the run if still up */
  start: (name: string, nodeArgs: string[], env: Record<string, string>, readyPath: string) => Promise<Proc>
  /** any command on `port` (a peer server), ready and stopped the same way */
  startCommand: (name: string, argv: string[], env: Record<string, string>, port: number, readyPath: string) => Promise<Proc>
  stop: (proc: Proc) => Promise<void>
  /** the HTTP scenarios' bare baseline (bench/baseline-http.ts), started on first use */
  httpBaseline: () => Promise<Proc>
  /** the fan-out series that scenarios 6, 7 and 8 share, measured once, on first use */
  fanout: () => Promise<FanoutShared>
}

export interface Scenario {
  /** its number in bench/README.md and in --only=; its rows' ids start with it */
  id: string
  name: string
  /** what the project side does */
  measures: string
  /** what it is compared with */
  baseline: string
  /** `http` scenarios run beside the bare HTTP baseline; `fanout` ones after it has stopped */
  kind: 'http' | 'fanout'
  run: (context: BenchContext) => Promise<Row[]>
}
