import { Type, type Static } from '@sinclair/typebox'
import { Text } from './common.js'

/** Content search and the fuzzy file finder (issue 13): POST …/search, GET …/find, RPC search/find. */

const Glob = Text({ minLength: 1, maxLength: 1000 })

export const SearchBody = Type.Object({
  query: Text({ maxLength: 1000, description: 'a literal, or a regex (Rust/ripgrep syntax, run by RE2) when isRegex' }),
  isRegex: Type.Boolean({ default: false }),
  caseSensitive: Type.Union([Type.Literal('smart'), Type.Boolean()], {
    default: 'smart',
    description: 'smart: case-sensitive only when the query has an upper-case letter (ripgrep -S)'
  }),
  wholeWord: Type.Boolean({ default: false, description: 'a match with no word character on either side (ripgrep -w)' }),
  include: Type.Array(Glob, { maxItems: 100, default: [], description: 'ripgrep -g globs; a leading ! excludes' }),
  exclude: Type.Array(Glob, { maxItems: 100, default: [], description: 'ripgrep -g \'!glob\' globs' }),
  path: Type.String({ default: '/', maxLength: 4096, description: 'the subtree (or file) to search' }),
  contextLines: Type.Integer({ minimum: 0, maximum: 10, default: 0 }),
  maxResults: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
  maxFileBytes: Type.Integer({ minimum: 1, maximum: 256 * 1024 * 1024, default: 1024 * 1024, description: 'larger files are skipped' }),
  revision: Type.Optional(Type.Integer({ minimum: 0, description: 'search the tree as it was right after this revision' }))
}, { additionalProperties: false })
export type SearchBody = Static<typeof SearchBody>

export const SearchMatch = Type.Object({
  path: Type.String(),
  line: Type.Integer({ description: '1-based' }),
  column: Type.Integer({ description: '1-based, in UTF-16 code units' }),
  length: Type.Integer({ description: 'in UTF-16 code units' }),
  preview: Type.String({ description: 'the line (without its line terminator), cut to 250 characters around the match' }),
  previewStart: Type.Integer({ description: 'where in the line the preview starts (UTF-16 code units, 0-based)' }),
  before: Type.Array(Type.String(), { description: 'up to contextLines lines before, each cut to 250 characters' }),
  after: Type.Array(Type.String(), { description: 'up to contextLines lines after' })
})
export type SearchMatch = Static<typeof SearchMatch>

const summaryFields = {
  revision: Type.Integer({ description: 'the revision searched' }),
  filesSearched: Type.Integer({ description: 'text files looked at (through the index or by reading them)' }),
  filesMatched: Type.Integer(),
  truncated: Type.Boolean({ description: 'more matches than maxResults, or the time budget ran out' }),
  timedOut: Type.Boolean({ description: 'SEARCH_TIMEOUT_MS ran out: what was found so far' }),
  elapsedMs: Type.Number()
}

export const SearchSummary = Type.Object(summaryFields)
export type SearchSummary = Static<typeof SearchSummary>

export const SearchResult = Type.Object({
  revision: summaryFields.revision,
  matches: Type.Array(SearchMatch),
  filesSearched: summaryFields.filesSearched,
  filesMatched: summaryFields.filesMatched,
  truncated: summaryFields.truncated,
  timedOut: summaryFields.timedOut,
  elapsedMs: summaryFields.elapsedMs
})
export type SearchResult = Static<typeof SearchResult>

export const FindQuery = Type.Object({
  q: Text({ maxLength: 1000, description: 'characters to find in order in a path (fzf-style); smart case' }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 })
}, { additionalProperties: false })
export type FindQuery = Static<typeof FindQuery>

export const FindHit = Type.Object({
  path: Type.String(),
  score: Type.Number(),
  positions: Type.Array(Type.Integer(), { description: 'UTF-16 indices into path of the matched characters' })
})
export type FindHit = Static<typeof FindHit>

export const FindResult = Type.Object({
  revision: Type.Integer(),
  results: Type.Array(FindHit)
})
export type FindResult = Static<typeof FindResult>
