import { RE2JS } from 're2js'
import { errors } from '../core/errors.js'

/**
 * A search query as ripgrep reads it (Rust regex syntax, line by line), translated to an RE2
 * pattern for re2js: linear-time matching, no backtracking, whatever the pattern.
 *
 * What is translated: `\w \d \s` (and their negations outside classes) are Unicode-aware in
 * ripgrep and ASCII in RE2, so they become Unicode classes; `\A` and `\z` match at a line's ends
 * (ripgrep searches line by line). What stays ASCII, as RE2 has it: `\b` and `\B`, and `\W \S`
 * inside a bracket class. A literal newline is refused, as ripgrep refuses it without
 * `--multiline`.
 */

export type CaseMode = 'smart' | boolean

export interface QueryOptions {
  query: string
  isRegex: boolean
  caseSensitive: CaseMode
  wholeWord: boolean
}

export interface CompiledQuery {
  /** the matches in one line (no line terminator in it): [start, end) in UTF-16 code units */
  matchLine: (line: string) => Array<[number, number]>
  /**
   * Whether any line of `text` (whole lines, `\n`-separated) may match: never false when one
   * does; true may also come from a match across lines, which matchLine then does not find.
   */
  mayMatch: (text: string) => boolean
  /** substrings every match contains, for the trigram prefilter (empty: none usable) */
  required: string[]
  caseInsensitive: boolean
  /** the same query, as fast as it can be for this text (the same matches) */
  forText: (text: string) => CompiledQuery
}

// ripgrep's Unicode classes (Rust regex: \w is Alphabetic, marks, decimal digits, connectors).
const WORD = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}'
const SPACE = '\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}'
const OUTSIDE: Record<string, string> = { w: `[${WORD}]`, W: `[^${WORD}]`, d: '\\p{Nd}', D: '\\P{Nd}', s: `[${SPACE}]`, S: `[^${SPACE}]`, A: '^', z: '$' }
/** the same class for a JavaScript RegExp (`u` mode) */
const JS_WORD = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}'
const INSIDE: Record<string, string> = { w: WORD, d: '\\p{Nd}', D: '\\P{Nd}', s: SPACE }
/**
 * For a text with no character past U+007F the Unicode classes match what RE2's ASCII ones do,
 * and run much faster; but for \s, to which Unicode adds the vertical tab.
 */
const ASCII_SPACE = '\\t\\n\\x0B\\f\\r '
const OUTSIDE_ASCII: Record<string, string> = { s: `[${ASCII_SPACE}]`, S: `[^${ASCII_SPACE}]`, A: '^', z: '$' }
const INSIDE_ASCII: Record<string, string> = { s: ASCII_SPACE }
const ASCII_WORD = '0-9A-Za-z_'
const NON_ASCII = /[^\u0000-\u007f]/u // eslint-disable-line no-control-regex

/** The user's regex in RE2 syntax (see above); throws INVALID_PATTERN for a literal newline. */
export function translate (pattern: string, ascii = false): string {
  const inside = ascii ? INSIDE_ASCII : INSIDE
  const outside = ascii ? OUTSIDE_ASCII : OUTSIDE
  let out = ''
  let inClass = false
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? ''
    if (c === '\n') throw errors.invalidPattern('the literal "\\n" is not allowed in a search (matches are within one line)', i)
    if (c === '\\') {
      const next = pattern[i + 1] ?? ''
      if (next === 'n') throw errors.invalidPattern('the literal "\\n" is not allowed in a search (matches are within one line)', i)
      const swap = inClass ? inside[next] : outside[next]
      out += swap ?? c + next
      i++
      continue
    }
    if (inClass) {
      if (c === '[' && pattern[i + 1] === ':') {
        const end = pattern.indexOf(':]', i + 2)
        if (end > 0) {
          out += pattern.slice(i, end + 2)
          i = end + 1
          continue
        }
      }
      if (c === ']') inClass = false
      out += c
      continue
    }
    if (c === '[') {
      inClass = true
      out += c
      // a `]` (or `^]`) right after the opening bracket is a literal
      if (pattern[i + 1] === '^') { out += '^'; i++ }
      if (pattern[i + 1] === ']') { out += '\\]'; i++ }
      continue
    }
    out += c
  }
  return out
}

/** Where in `pattern` re2js's complaint points. */
function errorPosition (pattern: string, error: string, input: string): number {
  if (/unexpected \)/.test(error)) {
    let depth = 0
    for (let i = 0; i < pattern.length; i++) {
      if (pattern[i] === '\\') { i++; continue }
      if (pattern[i] === '(') depth++
      if (pattern[i] === ')' && --depth < 0) return i
    }
  }
  if (/missing closing \)/.test(error)) {
    const open: number[] = []
    for (let i = 0; i < pattern.length; i++) {
      if (pattern[i] === '\\') { i++; continue }
      if (pattern[i] === '(') open.push(i)
      if (pattern[i] === ')') open.pop()
    }
    if (open.length > 0) return open[0] ?? 0
  }
  const at = input === '' ? -1 : pattern.indexOf(input)
  return at < 0 ? 0 : at
}

function compile (pattern: string, flags: number, original: string): RE2JS {
  try {
    return RE2JS.compile(pattern, flags)
  } catch (err) {
    const e = err as { error?: unknown, input?: unknown, message?: string }
    const error = typeof e.error === 'string' ? e.error : e.message ?? 'invalid pattern'
    const input = typeof e.input === 'string' ? e.input : ''
    throw errors.invalidPattern(`invalid regex: ${error}${input === '' ? '' : ` at ${JSON.stringify(input)}`}`, errorPosition(original, error, input))
  }
}

/**
 * ripgrep's smart case: case-insensitive when the pattern has at least one literal character
 * (bracket classes count, `\xNN` too; `\p{…}`, `\w` and the like do not) and none of them is
 * upper-case.
 */
export function smartCaseInsensitive (pattern: string, isRegex: boolean): boolean {
  let any = false
  let upper = false
  const literal = (ch: string): void => {
    any = true
    if (ch.toLowerCase() !== ch) upper = true
  }
  if (!isRegex) {
    for (const ch of pattern) literal(ch)
    return any && !upper
  }
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? ''
    if (c === '\\') {
      const next = pattern[i + 1] ?? ''
      i++
      if (next === 'p' || next === 'P') {
        if (pattern[i + 1] === '{') i = Math.max(i, pattern.indexOf('}', i))
        else i++
      } else if (next === 'x') {
        const m = /^\{([0-9a-fA-F]+)\}|^([0-9a-fA-F]{2})/.exec(pattern.slice(i + 1))
        if (m !== null) {
          const cp = parseInt(m[1] ?? m[2] ?? '0', 16)
          if (cp <= 0x10ffff) literal(String.fromCodePoint(cp))
          i += m[0].length
        }
      } else if (!/[0-9A-Za-z]/.test(next)) {
        literal(next)
      }
      continue
    }
    if (c === '(' && pattern[i + 1] === '?') {
      // flags or a group name: not literals
      const m = /^\(\?(P?<[^>]*>|[a-zA-Z-]*[:)])/.exec(pattern.slice(i))
      if (m !== null) i += m[0].length - 1
      continue
    }
    if (c === '{') {
      const m = /^\{\d*(,\d*)?\}/.exec(pattern.slice(i))
      if (m !== null) { i += m[0].length - 1; continue }
    }
    if (c === '[' && pattern[i + 1] === ':') {
      const end = pattern.indexOf(':]', i)
      if (end > 0) { i = end + 1; continue }
    }
    if ('.^$|()[]*+?-'.includes(c)) continue
    literal(c)
  }
  return any && !upper
}

/**
 * The literal runs every match must contain, for the trigram prefilter: characters outside any
 * group, class or escape class, concatenated at the top level (no top-level `|`), each run ended
 * by a metacharacter and shortened by an optional last character (`ab?`). Only runs with three
 * letters or digits in a row are useful to pg_trgm.
 */
export function requiredLiterals (pattern: string, isRegex: boolean): string[] {
  const useful = (s: string): boolean => /[\p{L}\p{N}]{3}/u.test(s)
  // a prefix of a required literal is required too (and a whole surrogate pair kept)
  const bounded = (s: string): string => s.length <= SHORT_LITERAL ? s : s.slice(0, /[\ud800-\udbff]/.test(s[SHORT_LITERAL - 1] ?? '') ? SHORT_LITERAL - 1 : SHORT_LITERAL)
  if (!isRegex) return useful(pattern) ? [bounded(pattern)] : []
  const runs: string[] = []
  let run = ''
  let depth = 0
  const end = (): void => { if (run !== '') runs.push(run); run = '' }
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? ''
    const next = pattern[i + 1] ?? ''
    if (c === '\\') {
      i++
      if (depth === 0 && next !== '' && !/[0-9A-Za-z]/.test(next) && !/[?*{]/.test(pattern[i + 1] ?? '')) run += next
      else end()
      continue
    }
    if (c === '[') {
      end()
      // skip the class: `]` right after `[` or `[^` is a literal
      let j = i + 1
      if (pattern[j] === '^') j++
      if (pattern[j] === ']') j++
      for (; j < pattern.length && pattern[j] !== ']'; j++) {
        if (pattern[j] === '\\') j++
        else if (pattern[j] === '[' && pattern[j + 1] === ':') j = Math.max(j, pattern.indexOf(':]', j) + 1)
      }
      i = j
      continue
    }
    if (c === '(') { depth++; end(); continue }
    if (c === ')') { depth--; end(); continue }
    if (c === '|') {
      if (depth === 0) return []
      continue
    }
    if (depth > 0) continue
    if ('?*'.includes(c) || (c === '{' && /^\{0?(,|\})/.test(pattern.slice(i)))) {
      // the previous character was optional
      run = run.slice(0, -1)
      end()
      continue
    }
    if ('.^$+{}'.includes(c)) { end(); continue }
    if (/[?*{]/.test(next) && !(next === '{' && !/^\{0?(,|\})/.test(pattern.slice(i + 1)))) {
      end()
      continue
    }
    run += c
  }
  end()
  return runs.map(bounded).filter(useful)
}

/**
 * Literals up to this long run on V8's RegExp, literal runs a regex requires are looked for with
 * it (or String.includes) up to this long (a longer one: its first SHORT_LITERAL characters):
 * their worst case is the text's length times the literal's, which this bounds.
 */
const SHORT_LITERAL = 64

/** A JavaScript RegExp source matching `literal` exactly (`u` mode: only syntax characters escaped). */
const jsLiteral = (literal: string): string => literal.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')

/**
 * Compiles a query; throws INVALID_PATTERN (with `details.position`) for a regex RE2 refuses.
 *
 * A regex runs on re2js (RE2: linear time): its DFA (`test`, no captures, several times faster
 * than a search for positions) tells which texts and lines can match, and only those lines are
 * searched for positions. A literal runs on V8's own RegExp, which finds a literal (or a literal
 * between two one-character word checks, for wholeWord) without any backtracking to speak of:
 * linear in the text for a given query, and much faster than re2js. Both fold case the same way
 * (Unicode simple case folding, as ripgrep).
 */
export function compileQuery (o: QueryOptions): CompiledQuery {
  const caseInsensitive = o.caseSensitive === 'smart' ? smartCaseInsensitive(o.query, o.isRegex) : !o.caseSensitive
  const required = o.query === '' ? [] : requiredLiterals(o.query, o.isRegex)
  const group = o.wholeWord ? 1 : 0
  if (!o.isRegex && o.query.includes('\n')) throw errors.invalidPattern('the query may not contain a newline (matches are within one line)', o.query.indexOf('\n'))
  if (!o.isRegex && o.query.length <= SHORT_LITERAL) {
    const body = jsLiteral(o.query)
    // ripgrep 13's -w: the match with a non-word character (or a line end) on each side.
    const source = o.wholeWord ? `(?:^|[^${JS_WORD}])(${body})(?:$|[^${JS_WORD}])` : body
    const flags = caseInsensitive ? 'iu' : 'u'
    const test = new RegExp(source, flags + 'm')
    const line = new RegExp(source, flags + 'gd')
    const literal: CompiledQuery = {
      caseInsensitive,
      required,
      forText: () => literal,
      mayMatch: text => test.test(text),
      matchLine (s) {
        const found: Array<[number, number]> = []
        line.lastIndex = 0
        for (let m = line.exec(s); m !== null; m = line.exec(s)) {
          const [start, end] = m.indices?.[group] ?? [m.index, m.index + m[0].length]
          found.push([start, end])
          // an empty match moves on by one; -w resumes after the word, so the next may share the separator
          line.lastIndex = end > start ? end : end + 1
          if (line.lastIndex > s.length || found.length > 10_000) break
        }
        return found
      }
    }
    return literal
  }
  const flags = caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0
  // The pattern as written must parse (errors point into it), then its translation. A long
  // literal runs here too, quoted.
  if (o.isRegex) compile(o.query, flags, o.query)
  // The literals every match holds, looked for first: far cheaper than any automaton.
  const holds = required.map(r => caseInsensitive ? new RegExp(jsLiteral(r), 'iu') : r)
  const quoted = RE2JS.quote(o.query)
  const unicode = re2Query(o, o.isRegex ? translate(o.query) : quoted, WORD, flags, group, caseInsensitive, required, holds)
  const ascii = re2Query(o, o.isRegex ? translate(o.query, true) : quoted, ASCII_WORD, flags, group, caseInsensitive, required, holds)
  unicode.forText = text => NON_ASCII.test(text) ? unicode : ascii
  ascii.forText = unicode.forText
  return unicode
}

function re2Query (o: QueryOptions, body: string, word: string, flags: number, group: number, caseInsensitive: boolean, required: string[], holds: Array<string | RegExp>): CompiledQuery {
  const full = o.wholeWord ? `(?:^|[^${word}])(${body})(?:$|[^${word}])` : body
  const line = compile(full, flags, o.query)
  const text = compile(full, flags | RE2JS.MULTILINE, o.query)
  return {
    caseInsensitive,
    required,
    forText: () => { throw new Error('set by compileQuery') },
    mayMatch: s => holds.every(h => typeof h === 'string' ? s.includes(h) : h.test(s)) && text.test(s),
    matchLine (s) {
      const found: Array<[number, number]> = []
      if (!line.test(s)) return found
      const m = line.matcher(s)
      let from = 0
      while (from <= s.length && m.find(from)) {
        const start = m.start(group)
        const end = m.end(group)
        found.push([start, end])
        from = end > start ? end : end + 1
        if (found.length > 10_000) break
      }
      return found
    }
  }
}
