import { publicError, toAppError } from '../core/errors.js'
import type { Change } from '../../schemas/files.js'

/** How tool results read: sizes as the reference server writes them, errors, changes, and the result cap. */

/** A size as the reference server's list_directory_with_sizes writes it: `0 B`, `812 B`, `1.50 KB`. */
export function formatSize (bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  if (bytes <= 0) return '0 B'
  const i = Math.floor(Math.log(bytes) / Math.log(1024))
  if (i <= 0) return `${bytes} B`
  const unit = Math.min(i, units.length - 1)
  return `${(bytes / Math.pow(1024, unit)).toFixed(2)} ${units[unit] ?? 'B'}`
}

/** A tool error's text: the contract's code first, then the message, then its details (as REST's `details`). */
export function errorText (err: unknown, exposeInternal: boolean): string {
  const e = publicError(toAppError(err), exposeInternal)
  const details = e.details === undefined ? '' : `\ndetails: ${JSON.stringify(e.details)}`
  return `${e.code}: ${e.message}${details}`
}

/** One line per change: `#42 move directory /src -> /lib (session …, 2026-…)`. */
export function changeLine (c: Change): string {
  const to = c.newPath === null ? '' : ` -> ${c.newPath}`
  const at = c.at instanceof Date ? c.at.toISOString() : c.at
  return `#${c.revision} ${c.op} ${c.kind} ${c.path}${to} (session ${c.sessionId ?? '-'}, ${at})`
}

/** What a mutating tool says last: the workspace revision after it. */
export function revisionLine (revision: number, note?: string): string {
  return `revision: ${revision}${note === undefined ? '' : ` (${note})`}`
}

export interface Capped {
  text: string
  truncated: boolean
}

/**
 * Caps a result at `maxBytes` of UTF-8: the longest prefix that fits with the note, cut after a
 * whole line when there is one in the prefix's second half (else at a character boundary), then
 * a note saying what was shown and what `rest` (given how many whole lines and bytes were kept)
 * says to call for the remainder.
 */
export function capText (text: string, maxBytes: number, rest: (linesShown: number, bytesShown: number) => string): Capped {
  const bytes = Buffer.from(text, 'utf8')
  if (bytes.length <= maxBytes) return { text, truncated: false }
  const totalLines = countLines(text)
  const noteFor = (end: number, linesShown: number, whole: boolean) =>
    `\n\n[truncated: this result is ${bytes.length} bytes (${totalLines} lines), over MCP_MAX_RESULT_BYTES (${maxBytes}); ` +
    `shown: the first ${end} bytes (${linesShown} whole lines${whole ? '' : ' and part of the next'}). ${rest(linesShown, end)}]`
  // Room for the note: the same note with the largest numbers it can name, and some slack.
  const budget = Math.max(0, maxBytes - Buffer.byteLength(noteFor(bytes.length, totalLines, false)) - 32)
  let end = budget
  // Back to a character boundary (not inside a multi-byte sequence).
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--
  const lastNewline = end > 0 ? bytes.lastIndexOf(0x0a, end - 1) : -1
  if (lastNewline >= 0 && lastNewline >= end / 2) end = lastNewline + 1
  const shown = bytes.subarray(0, end).toString('utf8')
  const whole = shown.endsWith('\n')
  const linesShown = whole ? countLines(shown) : Math.max(0, countLines(shown) - 1)
  const note = noteFor(end, linesShown, whole)
  return { text: shown + note, truncated: true }
}

/** Lines as an editor counts them: `a\nb` and `a\nb\n` are 2, `` is 0. */
export function countLines (text: string): number {
  if (text === '') return 0
  let n = 1
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++
  return text.endsWith('\n') ? n - 1 : n
}
