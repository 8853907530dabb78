import { errors } from '../core/errors.js'
import type { ReadResult } from './reads.js'

/**
 * Ranged reads (`?lines=`, docs/api.md "Ranged reads"): which lines a spec names, and the read
 * of a file cut to them. A line ends after its LF (a CRLF's CR is part of the line); a last line
 * without LF is a line too, and "" has none. The content returned is the file's exact text from
 * the first line's start to the last line's end, terminators included, so consecutive ranges
 * concatenate to the file.
 */

/** `A-B` (A to B), `A-` (A to the end), `-N` (the last N lines); 1-based, inclusive. */
export type LineSpec = { from: number, to: number | null } | { last: number }

export interface LineSlice {
  content: string
  /** the lines returned; `end` = `start` - 1 when none (a range starting past the end, an empty file) */
  start: number
  end: number
  totalLines: number
}

const SPEC = /^(?:(\d{1,15})-(\d{0,15})|-(\d{1,15}))$/

export function parseLineSpec (spec: string): LineSpec {
  const m = SPEC.exec(spec)
  const bad = (why: string): never => { throw errors.validation(`lines ${JSON.stringify(spec)}: ${why} (A-B, A- or -N, 1-based)`) }
  if (m === null) return bad('malformed')
  const [, a, b, n] = m
  if (n !== undefined) {
    const last = Number(n)
    return last >= 1 ? { last } : bad('N must be at least 1')
  }
  const from = Number(a)
  if (from < 1) return bad('lines start at 1')
  if (b === undefined || b === '') return { from, to: null }
  const to = Number(b)
  return to >= from ? { from, to } : bad('B must not be less than A')
}

/** The offsets where each line of `text` starts. */
function lineStarts (text: string): number[] {
  if (text === '') return []
  const starts = [0]
  for (let i = text.indexOf('\n'); i !== -1 && i + 1 < text.length; i = text.indexOf('\n', i + 1)) starts.push(i + 1)
  return starts
}

export function sliceLines (text: string, spec: LineSpec): LineSlice {
  const starts = lineStarts(text)
  const total = starts.length
  const start = 'last' in spec ? Math.max(1, total - spec.last + 1) : spec.from
  const end = 'last' in spec ? total : Math.min(spec.to ?? total, total)
  if (start > end) return { content: '', start, end: start - 1, totalLines: total }
  const from = starts[start - 1] ?? text.length
  const to = end < total ? starts[end] ?? text.length : text.length
  return { content: text.slice(from, to), start, end, totalLines: total }
}

/** A read (now or at a revision) cut to the lines `spec` names: 400 on a directory, 415 NOT_TEXT on bytes that are not UTF-8. */
export function readLines (read: ReadResult, spec: LineSpec): ReadResult {
  const { entry } = read
  if (entry.kind === 'directory') throw errors.isADirectory(entry.path)
  if (entry.encoding !== 'utf8' || entry.content === undefined) throw errors.notText(entry.path)
  const slice = sliceLines(entry.content, spec)
  return {
    ...read,
    entry: { ...entry, content: slice.content, encoding: 'utf8', lines: { start: slice.start, end: slice.end }, totalLines: slice.totalLines },
    bytes: Buffer.from(slice.content, 'utf8')
  }
}
