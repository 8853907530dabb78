/**
 * Escaping for the Markdown activity logs (log.md and the CHAT_LOG_DIR mirror). Paths, ops and
 * details come from clients; rendered as they are, a newline followed by `## …` would forge a
 * whole entry (issue "Hardening", finding 4). So every field goes through one of these, and
 * neither can produce a line break or leave its inline context.
 */

// Line breaks of any kind (CommonMark's \n and \r, and U+0085, U+2028, U+2029 that other
// renderers honour), every other control character, and the bidirectional overrides that could
// make a line display as something it is not.
const UNSAFE = /[\p{Cc}\u0085\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const visible = (c: string): string => NAMED[c] ?? `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`

/** Control characters as visible escapes (`\n`, `\u{1b}`); a backslash is doubled, so they stay unambiguous. */
export function escapeControls (value: string): string {
  return value.replaceAll('\\', '\\\\').replace(UNSAFE, visible)
}

// ASCII punctuation that means something inline (emphasis, code, links, HTML, entities, tables)
// or at a line's start; `.`, `-`, `+` and digits do only after a line break, which can no
// longer occur, so the usual `file.write` stays as it is.
// An `_` between two letters or digits can neither open nor close emphasis (CommonMark's
// flanking rules), so `PRECONDITION_FAILED` stays as it is; any other `_` is escaped.
const MARKUP = /[\\`*[\]<>#|~!&]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu

/** Plain text: Markdown's markup characters backslash-escaped, control characters made visible. */
export function mdText (value: string): string {
  return value.replace(MARKUP, c => `\\${c}`).replace(UNSAFE, visible)
}

/**
 * An inline code span that holds `value` whatever backticks it contains: the fence is one
 * backtick longer than the longest run inside (CommonMark), padded with a space when the value
 * starts or ends with a backtick, or starts and ends with a space (which would be stripped).
 */
export function mdCode (value: string): string {
  const text = escapeControls(value)
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map(m => m[0].length))
  const fence = '`'.repeat(longest + 1)
  const pad = /^`|`$/.test(text) || (/^ /.test(text) && / $/.test(text)) ? ' ' : ''
  return `${fence}${pad}${text}${pad}${fence}`
}

/**
 * A fenced code block that holds a text of many lines (a stack trace) and nothing else: split at
 * its line feeds, each line has its other control characters made visible and is indented by four
 * spaces, so no line can close the fence (a closing fence is indented three spaces at most) nor
 * start with `#` for a tool that reads the log line by line; the fence is also longer than any run
 * of backticks inside.
 */
export function mdFence (value: string): string {
  const lines = value.split(/\r?\n/).map(line => `    ${escapeControls(line)}`)
  const longest = Math.max(0, ...lines.flatMap(line => [...line.matchAll(/`+/g)].map(m => m[0].length)))
  const fence = '`'.repeat(Math.max(3, longest + 1))
  return [fence, ...lines, fence].join('\n')
}
