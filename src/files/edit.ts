import { formatPatch, structuredPatch, type StructuredPatch, type StructuredPatchHunk } from 'diff'
import { errors } from '../core/errors.js'

/**
 * Text edits (the `edit` operation, docs/api.md "Text edits"): pure functions, no I/O. The
 * operation (src/files/op-kinds.ts) reads the file, calls `applyEdits` and `unifiedDiff`, and
 * writes the result as any update does.
 *
 * - Edits apply in order, each to the text the previous ones left.
 * - Each `oldText` must occur exactly once (overlapping occurrences count), or at least once with
 *   `replaceAll` (then every non-overlapping occurrence, left to right, is replaced).
 * - Matching ignores the difference between CRLF and LF (in the file and in `oldText`); the
 *   replaced text is written in the file's own line-ending style, and every byte outside the
 *   matches is kept as it was. No other normalisation: Unicode is matched code unit for code
 *   unit (NFC and NFD spellings differ), whitespace exactly.
 * - An empty `oldText` is allowed only on an empty text: it sets the content.
 */

export interface TextEdit {
  oldText: string
  newText: string
  replaceAll?: boolean | undefined
}

export type LineEnding = '\n' | '\r\n'

/** The most lines an EDIT_AMBIGUOUS lists (each line once), and the closest lines an EDIT_NO_MATCH suggests. */
export const MAX_LISTED_LINES = 100
export const MAX_CLOSEST = 3
const MAX_SHOWN_LINE = 200

/** CRLF when more line breaks are CRLF than lone LF; LF otherwise (also for no line break). */
export function lineEndingOf (text: string): LineEnding {
  let crlf = 0
  let lf = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) {
    if (i > 0 && text.charCodeAt(i - 1) === 13) crlf++
    else lf++
  }
  return crlf > lf ? '\r\n' : '\n'
}

/** `text` with every CRLF as LF, and the way back from its offsets to the original's. */
class Normalized {
  readonly text: string
  /** the offsets (in `text`) of each LF that was a CRLF, ascending */
  readonly #crlf: number[] = []

  constructor (original: string) {
    let k = 0
    for (let p = original.indexOf('\r\n'); p !== -1; p = original.indexOf('\r\n', p + 2)) this.#crlf.push(p - k++)
    this.text = k === 0 ? original : original.replaceAll('\r\n', '\n')
  }

  /** The original offset of normalized offset `i` (a match starting at a CRLF's LF starts at its CR). */
  original (i: number): number {
    let lo = 0
    let hi = this.#crlf.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.#crlf[mid] ?? 0) < i) lo = mid + 1
      else hi = mid
    }
    return i + lo
  }
}

/** 1-based line numbers of ascending offsets in `text`. */
function lineNumbers (text: string, offsets: number[]): number[] {
  const out: number[] = []
  let line = 1
  let from = 0
  for (const at of offsets) {
    for (let i = text.indexOf('\n', from); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) {
      line++
      from = i + 1
    }
    out.push(line)
  }
  return out
}

/** Offsets of `needle` in `hay`: overlapping ones (step 1) or not (step = its length), at most `max`. */
function occurrences (hay: string, needle: string, overlapping: boolean, max = Infinity): number[] {
  const out: number[] = []
  const step = overlapping ? 1 : needle.length
  for (let i = hay.indexOf(needle); i !== -1 && out.length < max; i = hay.indexOf(needle, i + step)) out.push(i)
  return out
}

const clip = (line: string): string => line.length > MAX_SHOWN_LINE ? line.slice(0, MAX_SHOWN_LINE) + '…' : line

function bigrams (s: string): Map<number, number> {
  const m = new Map<number, number>()
  for (let i = 0; i + 1 < s.length; i++) {
    const g = s.charCodeAt(i) * 65536 + s.charCodeAt(i + 1)
    m.set(g, (m.get(g) ?? 0) + 1)
  }
  return m
}

/** Dice coefficient of the bigrams of `line` against `key`'s (precomputed), 1 when equal. */
function similarity (key: string, keyGrams: Map<number, number>, line: string): number {
  if (line === key) return 1
  if (line.length < 2 || key.length < 2) return 0
  const seen = new Map<number, number>()
  let common = 0
  for (let i = 0; i + 1 < line.length; i++) {
    const g = line.charCodeAt(i) * 65536 + line.charCodeAt(i + 1)
    const used = seen.get(g) ?? 0
    if (used < (keyGrams.get(g) ?? 0)) common++
    seen.set(g, used + 1)
  }
  // Equal after trimming (indentation differs) ranks just below an exact line.
  return Math.min(0.99, (2 * common) / (key.length - 1 + line.length - 1))
}

/**
 * The lines of `text` most like `needle`'s first non-blank line (compared trimmed, by shared
 * character pairs): where an agent's `oldText` probably meant to point. At most MAX_CLOSEST,
 * best first, each at least half alike.
 */
export function closestLines (text: string, needle: string): Array<{ line: number, text: string }> {
  const key = needle.split('\n').map(l => l.trim()).find(l => l !== '')
  if (key === undefined) return []
  const keyGrams = bigrams(key)
  const best: Array<{ line: number, text: string, score: number }> = []
  let line = 0
  let from = 0
  while (from <= text.length) {
    const nl = text.indexOf('\n', from)
    const end = nl === -1 ? text.length : nl
    line++
    const raw = text.slice(from, end)
    const trimmed = raw.trim()
    // Dice ≥ 0.5 needs lengths within a factor of 3 of each other.
    if (trimmed !== '' && trimmed.length * 3 >= key.length && trimmed.length <= key.length * 3) {
      const score = similarity(key, keyGrams, trimmed)
      if (score >= 0.5 && (best.length < MAX_CLOSEST || score > (best.at(-1)?.score ?? 0))) {
        best.push({ line, text: clip(raw.endsWith('\r') ? raw.slice(0, -1) : raw), score })
        best.sort((a, b) => b.score - a.score || a.line - b.line)
        if (best.length > MAX_CLOSEST) best.pop()
      }
    }
    if (nl === -1) break
    from = nl + 1
  }
  return best.map(({ line, text }) => ({ line, text }))
}

/**
 * Applies `edits` in order to `text` and returns the new text; throws (nothing applied) when an
 * edit does not match exactly once (EDIT_NO_MATCH, EDIT_AMBIGUOUS) or has an empty `oldText` on
 * a non-empty text (VALIDATION_FAILED). `path` only names the file in messages.
 */
export function applyEdits (path: string, text: string, edits: TextEdit[]): string {
  const eol = lineEndingOf(text)
  let current = text
  for (const [editIndex, edit] of edits.entries()) {
    const replacement = eol === '\r\n'
      ? edit.newText.replaceAll('\r\n', '\n').replaceAll('\n', '\r\n')
      : edit.newText.replaceAll('\r\n', '\n')
    if (edit.oldText === '') {
      if (current !== '') throw errors.validation(`edit ${editIndex}: oldText is empty, which is allowed only on an empty file (${path} is not empty)`)
      current = replacement
      continue
    }
    const view = new Normalized(current)
    const needle = edit.oldText.replaceAll('\r\n', '\n')
    const found = edit.replaceAll === true ? occurrences(view.text, needle, false) : occurrences(view.text, needle, true, 2)
    if (found.length === 0) throw errors.editNoMatch(path, editIndex, closestLines(view.text, needle))
    if (found.length > 1 && edit.replaceAll !== true) {
      const all = occurrences(view.text, needle, true)
      const lines = [...new Set(lineNumbers(view.text, all))].slice(0, MAX_LISTED_LINES)
      throw errors.editAmbiguous(path, editIndex, all.length, lines)
    }
    const parts: string[] = []
    let kept = 0
    for (const at of found) {
      const start = view.original(at)
      parts.push(current.slice(kept, start), replacement)
      kept = view.original(at + needle.length)
    }
    parts.push(current.slice(kept))
    current = parts.join('')
  }
  return current
}

/** Lines with their terminators ('a\n', 'b\r\n', and a last one without). */
function splitLines (text: string): string[] {
  const out: string[] = []
  let from = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', from)) {
    out.push(text.slice(from, i + 1))
    from = i + 1
  }
  if (from < text.length) out.push(text.slice(from))
  return out
}

const CONTEXT = 3
/** Past these the diff library gives up and one hunk replaces the changed region (still a valid patch). */
const DIFF_LIMITS = { maxEditLength: 2_000, timeout: 200 }

const atLineStart = (s: string, i: number): boolean => i === 0 || s.charCodeAt(i - 1) === 10

/** The offset `n` lines before the line starting at `i` (or 0). */
function linesBack (s: string, i: number, n: number): number {
  let at = i
  for (let k = 0; k < n && at > 0; k++) at = at < 2 ? 0 : s.lastIndexOf('\n', at - 2) + 1
  return at
}

/** The offset `n` lines after the line starting at `i` (or the end). */
function linesForward (s: string, i: number, n: number): number {
  let at = i
  for (let k = 0; k < n && at < s.length; k++) {
    const nl = s.indexOf('\n', at)
    at = nl === -1 ? s.length : nl + 1
  }
  return at
}

function countLines (s: string, end: number): number {
  let n = 0
  for (let i = s.indexOf('\n'); i !== -1 && i < end; i = s.indexOf('\n', i + 1)) n++
  return n
}

/** One hunk replacing the changed lines whole, between `before` and `after` context lines: the fallback of a diff too costly to minimise. */
function wholeHunk (oldLines: string[], newLines: string[], offset: number, before: number, after: number): StructuredPatchHunk {
  const lines: string[] = []
  const add = (sign: string, l: string): void => {
    lines.push(sign + (l.endsWith('\n') ? l.slice(0, -1) : l))
    if (!l.endsWith('\n')) lines.push('\\ No newline at end of file')
  }
  for (const l of oldLines.slice(0, before)) add(' ', l)
  for (const l of oldLines.slice(before, oldLines.length - after)) add('-', l)
  for (const l of newLines.slice(before, newLines.length - after)) add('+', l)
  for (const l of oldLines.slice(oldLines.length - after)) add(' ', l)
  const start = (count: number): number => count === 0 ? offset : offset + 1
  return { oldStart: start(oldLines.length), oldLines: oldLines.length, newStart: start(newLines.length), newLines: newLines.length, lines }
}

/**
 * A unified diff of `before` → `after` as git writes one: `diff --git`, `--- a/<path>`,
 * `+++ b/<path>`, hunks with 3 lines of context, `\ No newline at end of file` where it applies;
 * the CR of CRLF lines kept (the patch applies to the bytes). "" when nothing changed. Only the
 * lines between the common leading and trailing lines (and their context) are diffed, so a small
 * edit of a large file costs little; a diff too costly to minimise is one hunk.
 */
export function unifiedDiff (path: string, before: string, after: string): string {
  if (before === after) return ''
  // The common leading lines: up to the start of the line of the first difference.
  const shorter = Math.min(before.length, after.length)
  let p = 0
  while (p < shorter && before.charCodeAt(p) === after.charCodeAt(p)) p++
  const head = before.lastIndexOf('\n', p - 1) + 1
  // The common trailing lines: from a line start (in both) within the common tail, after `head`.
  let q = 0
  while (q < shorter - head && before.charCodeAt(before.length - 1 - q) === after.charCodeAt(after.length - 1 - q)) q++
  let tailOld = before.length - q
  if (!(atLineStart(before, tailOld) && atLineStart(after, after.length - q))) {
    const nl = before.indexOf('\n', tailOld)
    tailOld = nl === -1 ? before.length : nl + 1
  }
  const from = linesBack(before, head, CONTEXT)
  const oldTo = linesForward(before, tailOld, CONTEXT)
  const newTo = after.length - (before.length - oldTo)
  const offset = countLines(before, from)
  const oldChunk = before.slice(from, oldTo)
  const newChunk = after.slice(from, newTo)
  const names = ['a' + path, 'b' + path] as const
  const partial = structuredPatch(names[0], names[1], oldChunk, newChunk, undefined, undefined, { context: CONTEXT, ...DIFF_LIMITS })
  const hunks = partial === undefined
    ? [wholeHunk(splitLines(oldChunk), splitLines(newChunk), offset, splitLines(before.slice(from, head)).length, splitLines(before.slice(tailOld, oldTo)).length)]
    : partial.hunks.map(h => ({ ...h, oldStart: h.oldStart + offset, newStart: h.newStart + offset }))
  const patch: StructuredPatch = { oldFileName: names[0], newFileName: names[1], oldHeader: undefined, newHeader: undefined, hunks, isGit: true }
  return formatPatch(patch)
}
