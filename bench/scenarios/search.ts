import { spawn } from 'node:child_process'
import type { BenchContext, Scenario } from '../lib/context.js'
import type { Row } from '../lib/rows.js'
import { seedSearch, type SearchCorpus } from '../lib/search-corpus.js'
import { latency, log, median, round } from '../lib/util.js'

/**
 * Scenarios 9 and 10: content search and the fuzzy finder on a 10,000-file, ≈ 40 MB workspace
 * of real sources. 9: each query run one after another (1 client, after warm-up runs) against
 * `rg --json` over the same files exported to a folder in the same run; 10: GET …/find.
 */

interface Query { id: string, name: string, body: Record<string, unknown>, rg: string[], targetMs: number }

const QUERIES: Query[] = [
  { id: '9a', name: 'search: literal, case-sensitive (createServer)', body: { query: 'createServer' }, rg: ['-S', '-F', '-e', 'createServer'], targetMs: 300 },
  { id: '9b', name: 'search: literal, smart case → insensitive (deprecated)', body: { query: 'deprecated' }, rg: ['-S', '-F', '-e', 'deprecated'], targetMs: 300 },
  { id: '9c', name: 'search: simple regex (interface \\w+Options\\b)', body: { query: 'interface \\w+Options\\b', isRegex: true }, rg: ['-S', '-e', 'interface \\w+Options\\b'], targetMs: 300 },
  { id: '9d', name: 'search: regex, whole word (readFile\\w*)', body: { query: 'readFile\\w*', isRegex: true, wholeWord: true }, rg: ['-S', '-w', '-e', 'readFile\\w*'], targetMs: 300 },
  { id: '9e', name: 'search: no usable trigram (\\d{4}-\\d\\d-\\d\\d)', body: { query: '\\d{4}-\\d\\d-\\d\\d', isRegex: true }, rg: ['-S', '-e', '\\d{4}-\\d\\d-\\d\\d'], targetMs: 2000 }
]

const FIND_QUERIES = ['index', 'pkgjson', 'readme', 'typesnode', 'fsdts', 'tsconfig', 'utilts', 'lodash', 'cjs', 'srcindexjs']

let corpus: Promise<SearchCorpus> | undefined
const seeded = async (context: BenchContext): Promise<SearchCorpus> => await (corpus ??= seedSearch(context.project().base, context.seed.user))

async function post (base: string, token: string, workspace: string, body: Record<string, unknown>): Promise<{ ms: number, status: number, lines: number, truncated: boolean }> {
  const t0 = performance.now()
  const res = await fetch(`${base}/v1/workspaces/${workspace}/search`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ maxResults: 10_000, ...body })
  })
  const text = await res.text()
  const ms = performance.now() - t0
  if (res.status !== 200) return { ms, status: res.status, lines: 0, truncated: false }
  const r = JSON.parse(text) as { matches: Array<{ path: string, line: number }>, truncated: boolean }
  return { ms, status: res.status, lines: new Set(r.matches.map(m => `${m.path}:${m.line}`)).size, truncated: r.truncated }
}

/** One rg run: its time and the number of matching lines (`--json` match messages). */
async function rgRun (dir: string, args: string[]): Promise<{ ms: number, lines: number }> {
  const t0 = performance.now()
  const child = spawn('rg', ['--json', '--no-config', '--no-ignore', '--hidden', '--max-filesize', '1M', ...args, '--', '.'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] })
  let lines = 0
  let rest = ''
  child.stdout.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n')
    rest = parts.pop() ?? ''
    for (const p of parts) if (p.startsWith('{"type":"match"')) lines++
  })
  await new Promise(resolve => child.once('close', resolve))
  return { ms: performance.now() - t0, lines }
}

export const search: Scenario = {
  id: '9',
  name: 'content search on a 10,000-file, ≈ 40 MB workspace',
  measures: 'POST …/search, one query after another (1 client), maxResults 10,000: literal, smart case, regex, whole word, and a regex with no usable trigram',
  baseline: 'rg --json (ripgrep 13, --no-ignore --hidden) over the same files exported to a folder in the same run',
  kind: 'http',
  run: async function runSearch (context) {
    const c = await seeded(context)
    const n = context.settings.rounds * 10
    const rows: Row[] = []
    for (const q of QUERIES) {
      const token = await context.token()
      const base = context.project().base
      let errors = 0
      let non2xx = 0
      // The first run of a query is the cold one (the index asked, the texts read): kept apart.
      const cold = await post(base, token, c.workspace, q.body)
      const rgCold = await rgRun(c.dir, q.rg)
      await post(base, token, c.workspace, q.body)
      await rgRun(c.dir, q.rg)
      const ours: number[] = []
      const theirs: number[] = []
      let oursLines = 0
      let rgLines = 0
      let truncated = false
      // alternating, one of each at a time
      for (let i = 0; i < n; i++) {
        const p = await post(base, token, c.workspace, q.body).catch(() => { errors++; return undefined })
        if (p !== undefined) {
          if (p.status !== 200) non2xx++
          ours.push(p.ms)
          oursLines = p.lines
          truncated ||= p.truncated
        }
        const r = await rgRun(c.dir, q.rg)
        theirs.push(r.ms)
        rgLines = r.lines
      }
      const lp = latency(ours)
      const lb = latency(theirs)
      const rate = round(1000 / (ours.reduce((a, b) => a + b, 0) / Math.max(1, ours.length)), 1)
      const baseRate = round(1000 / (theirs.reduce((a, b) => a + b, 0) / Math.max(1, theirs.length)), 1)
      log(`${q.id}: first run ${Math.round(cold.ms)} ms, then p50 ${lp.p50} ms, p95 ${lp.p95} ms (${oursLines} lines${truncated ? ', truncated' : ''}); rg first ${Math.round(rgCold.ms)} ms, then p50 ${lb.p50} ms, p95 ${lb.p95} ms (${rgLines} lines)`)
      if (oursLines !== rgLines) log(`${q.id}: WARNING: ${oursLines} matching lines, rg ${rgLines}`)
      rows.push({
        id: q.id,
        scenario: q.name,
        unit: 'searches/s',
        rate,
        p50: lp.p50,
        p95: lp.p95,
        p99: lp.p99,
        errors,
        non2xx,
        baseline: { name: 'rg --json, same files', rate: baseRate, p99: lb.p99 },
        ratio: round(rate / baseRate, 2),
        target: `p95 < ${q.targetMs.toLocaleString('en-US')} ms`,
        met: lp.p95 < q.targetMs,
        detail: { firstRunMs: round(cold.ms, 1), rgFirstRunMs: round(rgCold.ms, 1), runs: n, files: c.files, bytes: c.bytes, matchingLines: oursLines, rgMatchingLines: rgLines, truncated, projectMs: ours.map(x => round(x, 1)), rgMs: theirs.map(x => round(x, 1)), rgP50: lb.p50, rgP95: lb.p95, medianRatioOfTimes: round(median(ours) / median(theirs), 2) }
      })
    }
    return rows
  }
}

export const find: Scenario = {
  id: '10',
  name: 'fuzzy file finder on the 10,000-file workspace',
  measures: `GET …/find?q=…&limit=50, one request after another (1 client), cycling over ${FIND_QUERIES.length} queries`,
  baseline: 'none (no fzf in the image); the target is the issue\'s',
  kind: 'http',
  run: async function runFind (context) {
    const c = await seeded(context)
    const token = await context.token()
    const base = context.project().base
    const n = context.settings.rounds * 200
    let errors = 0
    let non2xx = 0
    const times: number[] = []
    for (let i = -20; i < n; i++) {
      const q = FIND_QUERIES[(i + 20) % FIND_QUERIES.length] ?? ''
      const t0 = performance.now()
      try {
        const res = await fetch(`${base}/v1/workspaces/${c.workspace}/find?q=${encodeURIComponent(q)}&limit=50`, { headers: { authorization: `Bearer ${token}` } })
        await res.arrayBuffer()
        if (i >= 0) {
          times.push(performance.now() - t0)
          if (res.status !== 200) non2xx++
        }
      } catch {
        errors++
      }
    }
    const l = latency(times)
    log(`10: find p50 ${l.p50} ms, p95 ${l.p95} ms`)
    c.cleanup()
    return [{
      id: '10',
      scenario: 'find: fuzzy file finder, 10,000 files, limit 50',
      unit: 'req/s',
      rate: round(1000 / (times.reduce((a, b) => a + b, 0) / Math.max(1, times.length)), 0),
      p50: l.p50,
      p95: l.p95,
      p99: l.p99,
      errors,
      non2xx,
      baseline: null,
      ratio: null,
      target: 'p95 < 50 ms',
      met: l.p95 < 50,
      detail: { runs: n, queries: FIND_QUERIES }
    }]
  }
}
