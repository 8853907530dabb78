import { isUtf8 } from 'node:buffer'
import { sql } from 'kysely'
import { LRUCache } from 'lru-cache'
import type { Db } from '../db/schema.js'
import type { SearchMatch, SearchSummary } from '../../schemas/search.js'
import type { CompiledQuery } from './pattern.js'
import type { TreeFile } from './tree.js'

/**
 * Running a compiled query over a list of files: the trigram prefilter in PostgreSQL, then the
 * candidates' contents in path order, in chunks (the next one read while this one is matched),
 * line by line as ripgrep does. Stops at maxResults, at the deadline, or when `signal` aborts (a
 * client gone): no query is started after that.
 */

/** Contents over this are not in the trigram index (sql/005-search.sql): always candidates. */
export const INDEXED_MAX_BYTES = 1024 * 1024
const PREVIEW_CHARS = 250
const CHUNK_FILES = 500
const CHUNK_BYTES = 8 * 1024 * 1024
/** Below this many files the prefilter costs more than reading them. */
const PREFILTER_MIN_FILES = 32

/**
 * Decoded texts by sha256 (`false`: binary), bounded by SEARCH_CACHE_BYTES: a search over
 * contents already read needs no query for them. Contents never change under a sha256.
 */
export class TextCache {
  readonly #lru: LRUCache<string, string | false> | undefined
  /**
   * The trigram index's answers by literals: which contents it was asked about, and which of
   * them hold the literals. A content never changes under its sha256, so an answer stays true;
   * only contents not asked about yet need a query.
   */
  readonly #answers: LRUCache<string, { asked: Set<string>, hits: Set<string> }> | undefined

  constructor (maxBytes: number) {
    this.#lru = maxBytes > 0 ? new LRUCache({ maxSize: maxBytes, sizeCalculation: v => v === false ? 64 : v.length + 64 }) : undefined
    this.#answers = maxBytes > 0 ? new LRUCache({ max: 64 }) : undefined
  }

  answers (key: string): { asked: Set<string>, hits: Set<string> } | undefined {
    if (this.#answers === undefined) return undefined
    let known = this.#answers.get(key)
    if (known === undefined) {
      known = { asked: new Set(), hits: new Set() }
      this.#answers.set(key, known)
    }
    return known
  }

  get (sha256: string): string | false | undefined {
    return this.#lru?.get(sha256)
  }

  has (sha256: string): boolean {
    return this.#lru?.has(sha256) ?? false
  }

  set (sha256: string, text: string | false): void {
    this.#lru?.set(sha256, text)
  }
}

/** Fewer contents than this are checked one by one rather than through the index. */
const FEW_CONTENTS = 200

/** Below this many bytes still to read, reading them costs less than asking the index. */
const PREFILTER_MIN_UNREAD_BYTES = 2 * 1024 * 1024

export interface RunOptions {
  cache?: TextCache | undefined
  query: CompiledQuery
  files: TreeFile[]
  revision: number
  contextLines: number
  maxResults: number
  /** performance.now() value after which the search answers what it has */
  deadline: number
  started: number
  signal?: AbortSignal | undefined
}

const likeEscape = (s: string): string => s.replace(/[\\%_]/g, m => '\\' + m)

/**
 * The files whose content can hold every required literal, through the trigram index. A
 * statement timeout bounds it by the time left; undefined when it ran out.
 */
async function prefilter (db: Db, o: RunOptions): Promise<TreeFile[] | undefined> {
  const { required, caseInsensitive } = o.query
  if (required.length === 0 || o.files.length < PREFILTER_MIN_FILES) return o.files
  let unread = 0
  for (const f of o.files) if (o.cache?.has(f.sha256) !== true) unread += f.size
  if (unread < PREFILTER_MIN_UNREAD_BYTES) return o.files
  const known = o.cache?.answers(`${caseInsensitive ? 'i' : 's'}\0${required.join('\0')}`) ?? { asked: new Set<string>(), hits: new Set<string>() }
  const shas = [...new Set(o.files.filter(f => f.size <= INDEXED_MAX_BYTES && !known.asked.has(f.sha256)).map(f => f.sha256))]
  const patterns = required.map(r => `%${likeEscape(r)}%`)
  const left = Math.floor(o.deadline - performance.now())
  if (left <= 0) return undefined
  const op = sql.raw(caseInsensitive ? 'ILIKE' : 'LIKE')
  try {
    if (shas.length > 0) {
      const hits = await db.transaction().execute(async trx => {
        await sql.raw(`SET LOCAL statement_timeout = ${Math.max(1, left)}`).execute(trx)
        // One condition per literal (`LIKE ALL (array)` cannot use the index). For many contents
        // the index is read first, then its candidates kept to these; for a few, these are read.
        const conditions = sql.join(patterns.map(p => sql`search_text(content) ${op} ${p}`), sql` AND `)
        return shas.length > FEW_CONTENTS
          ? await sql<{ sha256: string }>`WITH hits AS MATERIALIZED (SELECT sha256 FROM blobs WHERE ${conditions})
              SELECT sha256 FROM hits WHERE sha256 = ANY(${shas}::text[])`.execute(trx)
          : await sql<{ sha256: string }>`SELECT sha256 FROM blobs WHERE sha256 = ANY(${shas}::text[]) AND ${conditions}`.execute(trx)
      })
      for (const sha of shas) known.asked.add(sha)
      for (const r of hits.rows) known.hits.add(r.sha256)
    }
    return o.files.filter(f => f.size > INDEXED_MAX_BYTES || known.hits.has(f.sha256))
  } catch (err) {
    if ((err as { code?: unknown }).code === '57014') return undefined
    throw err
  }
}

/** Files in chunks of at most CHUNK_FILES files and CHUNK_BYTES bytes (at least one file each). */
function chunks (files: TreeFile[], cache: TextCache | undefined): TreeFile[][] {
  const out: TreeFile[][] = []
  let current: TreeFile[] = []
  let bytes = 0
  for (const f of files) {
    if (current.length > 0 && (current.length >= CHUNK_FILES || bytes + f.size > CHUNK_BYTES)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(f)
    if (cache?.has(f.sha256) !== true) bytes += f.size
  }
  if (current.length > 0) out.push(current)
  return out
}

/** The texts of a chunk's files (`false`: binary; none: gone), from the cache or one query. */
async function loadChunk (db: Db, files: TreeFile[], cache: TextCache | undefined): Promise<Map<string, string | false>> {
  const texts = new Map<string, string | false>()
  const wanted = new Set<string>()
  for (const f of files) {
    const known = cache?.get(f.sha256)
    if (known === undefined) wanted.add(f.sha256)
    else texts.set(f.sha256, known)
  }
  if (wanted.size === 0) return texts
  const rows = await sql<{ sha256: string, content: Uint8Array }>`SELECT sha256, content FROM blobs WHERE sha256 = ANY(${[...wanted]}::text[])`.execute(db)
  for (const r of rows.rows) {
    const text = textOf(Buffer.from(r.content.buffer, r.content.byteOffset, r.content.byteLength)) ?? false
    texts.set(r.sha256, text)
    cache?.set(r.sha256, text)
  }
  return texts
}

/** Text as search sees it, or undefined for a binary file (a NUL byte, or not valid UTF-8). */
export function textOf (bytes: Buffer): string | undefined {
  if (bytes.includes(0) || !isUtf8(bytes)) return undefined
  return bytes.toString('utf8')
}

/** The line without a trailing carriage return, cut to PREVIEW_CHARS around [start, end). */
function preview (line: string, start: number, end: number): { preview: string, previewStart: number } {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line
  if (text.length <= PREVIEW_CHARS) return { preview: text, previewStart: 0 }
  let from = Math.max(0, Math.min(start - Math.max(0, Math.floor((PREVIEW_CHARS - (end - start)) / 2)), text.length - PREVIEW_CHARS))
  // never split a surrogate pair
  const low = (i: number): boolean => { const c = text.charCodeAt(i); return c >= 0xdc00 && c <= 0xdfff }
  if (from > 0 && low(from)) from++
  let to = Math.min(text.length, from + PREVIEW_CHARS)
  if (to < text.length && low(to)) to--
  return { preview: text.slice(from, to), previewStart: from }
}

function contextLine (line: string): string {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line
  if (text.length <= PREVIEW_CHARS) return text
  const c = text.charCodeAt(PREVIEW_CHARS - 1)
  return text.slice(0, c >= 0xd800 && c <= 0xdbff ? PREVIEW_CHARS - 1 : PREVIEW_CHARS)
}

/** Up to `n` lines before the line starting at `start`. */
function linesBefore (text: string, start: number, n: number): string[] {
  const out: string[] = []
  let end = start - 1
  while (out.length < n && end >= 0) {
    const s = text.lastIndexOf('\n', end - 1) + 1
    out.unshift(contextLine(text.slice(s, end)))
    end = s - 1
  }
  return out
}

/** Up to `n` lines after the line ending at `end` (the index of its newline, or the text's length). */
function linesAfter (text: string, end: number, n: number): string[] {
  const out: string[] = []
  let s = end + 1
  while (out.length < n && s < text.length) {
    let e = text.indexOf('\n', s)
    if (e < 0) e = text.length
    out.push(contextLine(text.slice(s, e)))
    s = e + 1
  }
  return out
}

/** Lines tested together before each is tested alone. */
const BLOCK_LINES = 64

/**
 * Every match in one file's text, in line order. The whole text is tested first (most files do
 * not match), then blocks of lines, then the lines of a block that may match.
 */
export function * matchText (path: string, text: string, compiled: CompiledQuery, contextLines: number): Generator<SearchMatch> {
  const query = compiled.forText(text)
  if (!query.mayMatch(text)) return
  let lineNo = 1
  let pos = 0
  while (pos < text.length) {
    // the block: BLOCK_LINES whole lines from `pos`
    let blockEnd = pos
    for (let n = 0; n < BLOCK_LINES && blockEnd < text.length; n++) {
      const nl = text.indexOf('\n', blockEnd)
      blockEnd = nl < 0 ? text.length : nl + 1
    }
    if (!query.mayMatch(text.slice(pos, blockEnd))) {
      for (let i = text.indexOf('\n', pos); i >= 0 && i < blockEnd; i = text.indexOf('\n', i + 1)) lineNo++
      pos = blockEnd
      continue
    }
    while (pos < blockEnd) {
      let end = text.indexOf('\n', pos)
      if (end < 0) end = text.length
      const line = text.slice(pos, end)
      const found = query.matchLine(line)
      if (found.length > 0) {
        const before = contextLines > 0 ? linesBefore(text, pos, contextLines) : []
        const after = contextLines > 0 ? linesAfter(text, end, contextLines) : []
        for (const [s, e] of found) {
          yield { path, line: lineNo, column: s + 1, length: e - s, ...preview(line, s, e), before, after }
        }
      }
      lineNo++
      pos = end + 1
    }
  }
}

export type SearchEvents = AsyncGenerator<SearchMatch, SearchSummary>

/** The matches, one by one, then the summary (as the generator's return value). */
export async function * runSearch (db: Db, o: RunOptions): SearchEvents {
  let filesSearched = 0
  let filesMatched = 0
  let emitted = 0
  let truncated = false
  let timedOut = false
  const aborted = (): boolean => o.signal?.aborted === true
  const late = (): boolean => performance.now() >= o.deadline
  const summary = (): SearchSummary => ({
    revision: o.revision,
    filesSearched,
    filesMatched,
    truncated: truncated || timedOut,
    timedOut,
    elapsedMs: Math.round((performance.now() - o.started) * 10) / 10
  })

  const candidates = await prefilter(db, o)
  if (candidates === undefined) {
    timedOut = true
    return summary()
  }
  // Files the index ruled out were searched (by the index).
  filesSearched = o.files.length - candidates.length
  const parts = chunks(candidates, o.cache)
  let pending = parts.length > 0 && !aborted() ? loadChunk(db, parts[0] ?? [], o.cache) : undefined
  try {
    for (let c = 0; c < parts.length && pending !== undefined; c++) {
      const contents = await pending
      pending = undefined
      if (aborted()) break
      if (late()) { timedOut = true; break }
      const nextPart = parts[c + 1]
      // the next chunk is read while this one is matched
      if (nextPart !== undefined && !truncated) pending = loadChunk(db, nextPart, o.cache)
      for (const f of parts[c] ?? []) {
        if (late()) { timedOut = true; break }
        const text = contents.get(f.sha256)
        // gone since the tree was read (retention), or binary: nothing to search
        if (text === undefined || text === false) continue
        filesSearched++
        let matched = false
        for (const m of matchText(f.path, text, o.query, o.contextLines)) {
          if (emitted >= o.maxResults) { truncated = true; break }
          if (!matched) { matched = true; filesMatched++ }
          emitted++
          yield m
          if (aborted()) return summary()
        }
        if (truncated) break
      }
      if (truncated || timedOut) break
    }
  } finally {
    // a read still in flight is awaited, never left to fail unobserved
    if (pending !== undefined) await pending.catch(() => {})
  }
  return summary()
}
