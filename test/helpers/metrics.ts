import type { FastifyInstance } from 'fastify'

/** Reading /metrics in tests: a strict Prometheus text parser, a scrape, a sum over samples. */

export interface Sample { name: string, labels: Record<string, string>, value: number }
export interface Family { type: string, help: string, samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'], counter: [''], gauge: [''], untyped: [''] }

/** A strict reader of the Prometheus text format 0.0.4: throws on any line it does not understand. */
export function parsePrometheus (text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const familyOf = (sampleName: string): Family | undefined => {
    for (const [name, f] of families) {
      if ((SUFFIXES[f.type] ?? ['']).some(s => name + s === sampleName)) return f
    }
    return undefined
  }
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('# HELP ')) {
      const [name = '', ...help] = line.slice(7).split(' ')
      if (!NAME.test(name)) throw new Error(`bad HELP line: ${line}`)
      families.set(name, { type: families.get(name)?.type ?? 'untyped', help: help.join(' '), samples: [] })
      continue
    }
    if (line.startsWith('# TYPE ')) {
      const [name = '', type = ''] = line.slice(7).split(' ')
      if (!NAME.test(name) || SUFFIXES[type] === undefined) throw new Error(`bad TYPE line: ${line}`)
      families.set(name, { type, help: families.get(name)?.help ?? '', samples: families.get(name)?.samples ?? [] })
      continue
    }
    if (line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (m === null) throw new Error(`bad sample line: ${line}`)
    const [, name = '', rawLabels = '', rawValue = ''] = m
    const labels: Record<string, string> = {}
    let rest = rawLabels
    while (rest !== '') {
      const l = LABEL.exec(rest)
      if (l === null) throw new Error(`bad labels in: ${line}`)
      labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\')
      rest = rest.slice(l[0].length)
    }
    const value = parseFloatGo(rawValue)
    if (value === undefined) throw new Error(`bad value in: ${line}`)
    const family = familyOf(name)
    if (family === undefined) throw new Error(`sample without a TYPE: ${line}`)
    family.samples.push({ name, labels, value })
  }
  return families
}

/** Values are read like Go's strconv.ParseFloat, as Prometheus does: NaN and Inf in any case. */
function parseFloatGo (raw: string): number | undefined {
  if (/^nan$/i.test(raw)) return NaN
  if (/^[+-]?inf(inity)?$/i.test(raw)) return raw.startsWith('-') ? -Infinity : Infinity
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw)) return undefined
  return Number(raw)
}

export async function scrape (app: FastifyInstance): Promise<Map<string, Family>> {
  const res = await app.inject({ url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  if (!String(res.headers['content-type']).startsWith('text/plain')) throw new Error(`content-type ${String(res.headers['content-type'])}`)
  return parsePrometheus(res.body)
}

/** The sum of a family's samples named `name` whose labels include `labels`. */
export function value (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value
    }
  }
  return total
}
