import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import type { Settings } from './context.js'
import { BATCH_SAT, RATE_100, RATE_1000, RATE_SAT } from './fan-series.js'
import type { Row } from './rows.js'
import { log, PIN, ROOT, round } from './util.js'

/** The results: one Markdown table on stdout, and the same with every raw run as JSON in bench/results/. */

export interface Run {
  ci: boolean
  started: Date
  serverKind: string
  settings: Settings
  loadAtStart: number[]
  rows: Row[]
}

const fmt = (x: number | null, digits = 0): string => x === null ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

function machine (loadAtStart: number[]): Record<string, unknown> {
  let kernel = ''
  try {
    kernel = readFileSync('/proc/version', 'utf8').split(' ').slice(0, 3).join(' ')
  } catch {}
  return { nproc: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version, kernel, pinned: PIN, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg().map(x => round(x, 2)) }
}

function table (rows: Row[]): string {
  const lines = [
    '| # | scenario | rate | p50 ms | p95 ms | p99 ms | errors | non-2xx | baseline: rate (p99 ms) | ratio | target | met |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|'
  ]
  for (const r of rows) {
    const memory = r.unit === 'MB RSS'
    const rate = memory ? `${fmt(r.rate, 1)} MB` : `${fmt(r.rate)} ${r.unit}`
    const base = r.baseline === null ? '—' : memory ? `${fmt(r.baseline.rate, 1)} MB (${r.baseline.name})` : `${fmt(r.baseline.rate)} (${fmt(r.baseline.p99, 2)}) ${r.baseline.name}`
    lines.push(`| ${r.id} | ${r.scenario} | ${rate} | ${fmt(r.p50, 2)} | ${fmt(r.p95, 2)} | ${fmt(r.p99, 2)} | ${r.errors} | ${r.non2xx} | ${base} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`} | ${r.target} | ${r.met === null ? '—' : r.met ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n')
}

/** Prints the table, writes the JSON, and sets exit code 1 when any row saw errors or non-2xx answers. */
export function report ({ ci, started, serverKind, settings, loadAtStart, rows }: Run): void {
  const mode = ci ? 'ci' : 'full'
  const markdown = table(rows)
  process.stdout.write(`\n## Workbench API benchmarks (${mode} run, ${started.toISOString()}; load average ${loadAtStart.join(' ')} at start, ${loadavg().map(x => x.toFixed(2)).join(' ')} at end)\n\n${markdown}\n\n`)
  const failed = rows.filter(r => r.errors > 0 || r.non2xx > 0)
  const file = join(ROOT, 'bench/results', `bench-${mode}-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
  writeFileSync(file, JSON.stringify({
    mode,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    server: serverKind,
    machine: machine(loadAtStart),
    config: { ...settings, fanoutEventsPerSecond: { subscribers100: RATE_100, subscribers1000: RATE_1000, saturation: RATE_SAT, saturationBatch: BATCH_SAT } },
    rows,
    markdown
  }, null, 2) + '\n')
  log(`results: ${file}`)
  if (failed.length > 0) {
    log(`FAILED: errors or non-2xx answers in scenario ${failed.map(r => r.id).join(', ')}`)
    process.exitCode = 1
  }
}
