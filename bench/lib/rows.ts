import type { FanoutRun } from './ws-load.js'
import { round } from './util.js'

/** One row of the results table (and of the JSON), and the builders of the fan-out and memory rows. */

export interface Baseline { name: string, rate: number | null, p99: number | null }

export interface Row {
  id: string
  scenario: string
  unit: string
  rate: number | null
  p50: number | null
  p95: number | null
  p99: number | null
  errors: number
  non2xx: number
  baseline: Baseline | null
  /** project ÷ baseline (throughput; for memory rows, RSS) */
  ratio: number | null
  target: string
  met: boolean | null
  detail: Record<string, unknown>
}

export function fanRow (id: string, scenario: string, run: FanoutRun, base: FanoutRun | null, target: { p99?: number, p99Ratio?: number, ratio?: number } | null): Row {
  const ratio = base === null ? null : round(run.rate / base.rate, 2)
  let met: boolean | null = null
  let text = '—'
  let p99Ratio: number | null = null
  if (target?.p99Ratio !== undefined && base !== null) {
    // The latency target, relative to the bare ws server at the same load in the same run
    // (absolute milliseconds differ 3× from machine to machine): the project's commit to receipt
    // (from the event's `data.at`, taken in the transaction, so a little before the commit)
    // against the bare server's send to receipt (its "commit" is the send; exact, not rounded
    // to the millisecond as `data.at` is).
    p99Ratio = round(run.commitLatency.p99 / Math.max(base.latency.p99, 0.001), 2)
    met = p99Ratio <= target.p99Ratio
    text = `commit→receipt p99 ≤ ${target.p99Ratio}× bare ws p99 (${run.commitLatency.p99} ms vs ${base.latency.p99} ms: ${p99Ratio}×)`
  } else if (target?.p99 !== undefined) {
    // An absolute bound: commit to receipt (as above); the table's p50–p99 columns are the
    // stricter send to receipt, which includes the write's HTTP request and transaction.
    met = run.commitLatency.p99 < target.p99
    text = `commit→receipt p99 < ${target.p99} ms (${run.commitLatency.p99} ms)`
  } else if (target?.ratio !== undefined && ratio !== null) {
    met = ratio >= target.ratio
    text = `≥ ${target.ratio}× baseline`
  }
  return {
    id,
    scenario,
    unit: 'deliveries/s',
    rate: run.rate,
    p50: run.latency.p50,
    p95: run.latency.p95,
    p99: run.latency.p99,
    errors: run.errors,
    non2xx: run.non2xx,
    baseline: base === null ? null : { name: 'bare ws broadcast', rate: base.rate, p99: base.latency.p99 },
    ratio,
    target: text,
    met,
    detail: { project: run, baseline: base, ...(p99Ratio === null ? {} : { commitP99Ratio: p99Ratio }) }
  }
}

export function memRow (id: string, scenario: string, rss: number, baseRss: number | null, targetMb: number | null, detail: Record<string, unknown> = {}): Row {
  const mb = round(rss / 1048576, 1)
  return {
    id,
    scenario,
    unit: 'MB RSS',
    rate: mb,
    p50: null,
    p95: null,
    p99: null,
    errors: 0,
    non2xx: 0,
    baseline: baseRss === null ? null : { name: 'bare ws server', rate: round(baseRss / 1048576, 1), p99: null },
    ratio: baseRss === null ? null : round(rss / baseRss, 2),
    target: targetMb === null ? '—' : `< ${targetMb} MB`,
    met: targetMb === null ? null : mb < targetMb,
    detail
  }
}
