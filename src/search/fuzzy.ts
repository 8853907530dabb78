import type { FindHit } from '../../schemas/search.js'

/**
 * The fuzzy file finder's scoring, after fzf's (v2, path scheme): the query's characters in
 * order anywhere in the path; each match scores, with bonuses for a match at the start of a word
 * (after `/`, `-`, `_`, `.`, a space, a camelCase or digit boundary) and for consecutive matches,
 * and penalties for gaps between them. The best alignment is found by dynamic programming (its
 * positions are returned). On top of fzf: an exact file name (with or without its extension)
 * ranks first, and shorter paths break ties. Smart case, as fzf: case-sensitive only when the
 * query has an upper-case letter. Spaces in the query are ignored.
 */

const SCORE_MATCH = 16
const GAP_START = -3
const GAP_EXTENSION = -1
const BONUS_BOUNDARY = SCORE_MATCH / 2
const BONUS_NON_WORD = SCORE_MATCH / 2
const BONUS_CAMEL = BONUS_BOUNDARY + GAP_EXTENSION
const BONUS_CONSECUTIVE = -(GAP_START + GAP_EXTENSION)
const BONUS_FIRST_CHAR_MULTIPLIER = 2
const BONUS_BOUNDARY_WHITE = BONUS_BOUNDARY + 2
const BONUS_BOUNDARY_DELIMITER = BONUS_BOUNDARY + 1
const EXACT_NAME = 1000
const EXACT_STEM = 500

const enum Cls { White, NonWord, Delimiter, Lower, Upper, Letter, Number }

function classOf (code: number): Cls {
  if (code >= 97 && code <= 122) return Cls.Lower
  if (code >= 65 && code <= 90) return Cls.Upper
  if (code >= 48 && code <= 57) return Cls.Number
  if (code === 32 || code === 9 || code === 10 || code === 13) return Cls.White
  if (code === 47 || code === 44 || code === 58 || code === 59 || code === 124) return Cls.Delimiter
  if (code < 128) return Cls.NonWord
  const ch = String.fromCharCode(code)
  if (ch.toLowerCase() !== ch) return Cls.Upper
  if (ch.toUpperCase() !== ch) return Cls.Lower
  return /[\p{L}\p{N}]/u.test(ch) ? Cls.Letter : Cls.NonWord
}

function bonusFor (prev: Cls, cls: Cls): number {
  if (cls > Cls.Delimiter) {
    if (prev === Cls.White) return BONUS_BOUNDARY_WHITE
    if (prev === Cls.Delimiter) return BONUS_BOUNDARY_DELIMITER
    if (prev === Cls.NonWord) return BONUS_BOUNDARY
  }
  if ((prev === Cls.Lower && cls === Cls.Upper) || (prev !== Cls.Number && cls === Cls.Number)) return BONUS_CAMEL
  if (cls === Cls.NonWord || cls === Cls.Delimiter) return BONUS_NON_WORD
  if (cls === Cls.White) return BONUS_BOUNDARY_WHITE
  return 0
}

export interface FuzzyQuery {
  /** the query's characters (lower-cased unless case-sensitive) */
  chars: string
  caseSensitive: boolean
}

export function fuzzyQuery (q: string): FuzzyQuery {
  const chars = q.replace(/\s+/g, '')
  const caseSensitive = chars.toLowerCase() !== chars
  return { chars: caseSensitive ? chars : chars.toLowerCase(), caseSensitive }
}

const NONE = -1_000_000_000

/** Per-character bonuses of a path (a word start, camelCase…), computed once per path. */
export function pathBonuses (path: string): Int8Array {
  const bonus = new Int8Array(path.length)
  let prev = Cls.Delimiter
  for (let j = 0; j < path.length; j++) {
    const cls = classOf(path.charCodeAt(j))
    bonus[j] = bonusFor(prev, cls)
    prev = cls
  }
  return bonus
}

/** Scratch matrices shared by every call (grown when needed): no allocation per path. */
let M = new Int32Array(4096)
let run = new Int32Array(4096)
let from = new Int32Array(4096)

function ensure (cells: number): void {
  if (M.length >= cells) return
  const size = Math.max(cells, M.length * 2)
  M = new Int32Array(size)
  run = new Int32Array(size)
  from = new Int32Array(size)
}

/**
 * The path's score and matched positions, or undefined when the query is not a subsequence of
 * it. `lower` is the path lower-cased (same length) and `bonus` its pathBonuses, when known.
 */
export function fuzzyScore (query: FuzzyQuery, path: string, lower?: string, bonus?: Int8Array): Omit<FindHit, 'path'> | undefined {
  const q = query.chars
  const m = q.length
  let t = path
  if (!query.caseSensitive) {
    const l = lower ?? path.toLowerCase()
    // toLowerCase may change the length (rare letters): positions would not line up, so compare as is
    if (l.length === path.length) t = l
  }
  const n = t.length
  if (m === 0) return { score: 0, positions: [] }
  // subsequence test, and the window the alignment can lie in
  let first = -1
  let seen = 0
  for (let j = 0; j < n && seen < m; j++) {
    if (t.charCodeAt(j) === q.charCodeAt(seen)) {
      if (seen === 0) first = j
      seen++
    }
  }
  if (seen < m) return undefined
  let last = n - 1
  while (last >= 0 && t.charCodeAt(last) !== q.charCodeAt(m - 1)) last--
  const bonuses = bonus ?? pathBonuses(path)
  const width = last - first + 1
  ensure(m * width)
  // the query's and the window's characters, read once
  const qs = new Int32Array(m)
  for (let i = 0; i < m; i++) qs[i] = q.charCodeAt(i)
  const ts = new Int32Array(width)
  for (let j = 0; j < width; j++) ts[j] = t.charCodeAt(first + j)
  // M: best score with query char i matched at first + j; run: the consecutive run ending there
  for (let i = 0; i < m; i++) {
    const qc = qs[i] as number
    const row = i * width
    const prevRow = row - width
    // best (score, position) of row i-1 with a gap before j: the previous match at k < j - 1
    let gapBest = NONE
    let gapFrom = -1
    for (let j = 0; j < width; j++) {
      const at = row + j
      M[at] = NONE
      if (i > 0 && j >= 2) {
        const cand = M[prevRow + j - 2] as number
        gapBest += GAP_EXTENSION
        if (cand + GAP_START > gapBest) { gapBest = cand + GAP_START; gapFrom = j - 2 }
      }
      if (j < i || ts[j] !== qc) continue
      const b = bonuses[first + j] as number
      if (i === 0) {
        M[at] = SCORE_MATCH + b * BONUS_FIRST_CHAR_MULTIPLIER
        run[at] = 1
        continue
      }
      let best = NONE
      const diag = j > 0 ? M[prevRow + j - 1] as number : NONE
      if (diag > NONE) {
        const r = (run[prevRow + j - 1] as number) + 1
        const runStart = bonuses[first + j - r + 1] as number
        best = diag + SCORE_MATCH + Math.max(b, BONUS_CONSECUTIVE, runStart)
        from[at] = j - 1
        run[at] = r
      }
      if (gapBest > NONE && gapBest + SCORE_MATCH + b > best) {
        best = gapBest + SCORE_MATCH + b
        from[at] = gapFrom
        run[at] = 1
      }
      M[at] = best
    }
  }
  let score = NONE
  let end = -1
  for (let j = 0; j < width; j++) {
    const v = M[(m - 1) * width + j] ?? NONE
    if (v > score) { score = v; end = j }
  }
  if (end < 0) return undefined
  const positions: number[] = new Array<number>(m)
  for (let i = m - 1, j = end; i >= 0; i--) {
    positions[i] = first + j
    j = from[i * width + j] ?? -1
  }
  const slash = path.lastIndexOf('/')
  const name = t.slice(slash + 1)
  const dot = name.lastIndexOf('.')
  if (name === q) score += EXACT_NAME
  else if (dot > 0 && name.slice(0, dot) === q) score += EXACT_STEM
  return { score, positions }
}

/** Paths prepared for ranking: lower-cased and their bonuses computed once. */
export class PathIndex {
  readonly #paths: readonly string[]
  readonly #lower: string[]
  readonly #bonus: Int8Array[]

  constructor (paths: readonly string[]) {
    this.#paths = paths
    this.#lower = paths.map(p => p.toLowerCase())
    this.#bonus = paths.map(pathBonuses)
  }

  /** The `limit` best paths, best first; ties by shorter path, then by path. */
  rank (q: string, limit: number): FindHit[] {
    const query = fuzzyQuery(q)
    const hits: FindHit[] = []
    for (let i = 0; i < this.#paths.length; i++) {
      const path = this.#paths[i] ?? ''
      const r = fuzzyScore(query, path, this.#lower[i], this.#bonus[i])
      if (r !== undefined) hits.push({ path, score: r.score, positions: r.positions })
    }
    hits.sort((a, b) => b.score - a.score || a.path.length - b.path.length || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    return hits.slice(0, limit)
  }
}

/** rank() over paths not prepared beforehand. */
export function rankPaths (paths: readonly string[], q: string, limit: number): FindHit[] {
  return new PathIndex(paths).rank(q, limit)
}
