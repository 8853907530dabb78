import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Cursor, UUID_PATTERN } from './common.js'
import { LineRange, Operation, TextEdit, MAX_EDITS } from './files.js'
import { SearchBody } from './search.js'
import { ForkBody } from './snapshots.js'

/**
 * The MCP tools' arguments (src/mcp/tools.ts): each tool's `inputSchema` in tools/list is one of
 * these, and the same schema validates its arguments. Names and argument names follow the
 * reference filesystem server (@modelcontextprotocol/server-filesystem) where it has the tool.
 * A path is written as agents write them: `/src/a.ts`, `src/a.ts` and `./src/a.ts` name the same
 * file of the workspace (src/mcp/paths.ts).
 */

const strict = { additionalProperties: false }
const AgentPath = (description = 'a path in the workspace: /src/a.ts, src/a.ts and ./src/a.ts are the same file') =>
  Type.String({ maxLength: 4096, description })
const IfMatch = Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'the etag the entry must still have (else PRECONDITION_FAILED)' }))
const ExcludePatterns = Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), {
  maxItems: 100,
  default: [],
  description: 'glob patterns (relative to path) of entries to leave out, with what is under them'
}))
const LineCount = (description: string) => Type.Integer({ minimum: 1, maximum: 10_000_000, description })
const Id = (description: string) => Type.String({ pattern: UUID_PATTERN, description })

export const McpArgs = {
  read_text_file: Type.Object({
    path: AgentPath(),
    head: Type.Optional(LineCount('If provided, returns only the first N lines of the file')),
    tail: Type.Optional(LineCount('If provided, returns only the last N lines of the file'))
  }, strict),
  read_multiple_files: Type.Object({
    paths: Type.Array(AgentPath(), { minItems: 1, maxItems: 100, description: 'Array of file paths to read (at most 100).' })
  }, strict),
  read_lines: Type.Object({
    path: AgentPath(),
    lines: LineRange
  }, strict),
  write_file: Type.Object({
    path: AgentPath(),
    content: Type.String({ description: 'the whole new text of the file (UTF-8)' }),
    ifMatch: IfMatch
  }, strict),
  edit_file: Type.Object({
    path: AgentPath(),
    edits: Type.Array(TextEdit, { minItems: 1, maxItems: MAX_EDITS, description: 'applied in order, each to the text the previous left; all or none' }),
    dryRun: Type.Optional(Type.Boolean({ default: false, description: 'Preview changes using git-style diff format' })),
    ifMatch: IfMatch
  }, strict),
  create_directory: Type.Object({ path: AgentPath() }, strict),
  list_directory: Type.Object({ path: AgentPath() }, strict),
  list_directory_with_sizes: Type.Object({
    path: AgentPath(),
    sortBy: Type.Optional(Type.Union([Type.Literal('name'), Type.Literal('size')], { default: 'name', description: 'Sort entries by name or size' }))
  }, strict),
  directory_tree: Type.Object({ path: AgentPath(), excludePatterns: ExcludePatterns }, strict),
  move_file: Type.Object({ source: AgentPath(), destination: AgentPath() }, strict),
  copy_file: Type.Object({
    source: AgentPath(),
    destination: AgentPath(),
    overwrite: Type.Optional(Type.Boolean({ description: 'replace a file at destination (files only)' }))
  }, strict),
  delete: Type.Object({ path: AgentPath('the file, or the directory with everything under it, to delete'), ifMatch: IfMatch }, strict),
  search_files: Type.Object({
    path: AgentPath(),
    pattern: Type.String({ minLength: 1, maxLength: 1024, description: 'a glob over paths relative to path: *.ts (this level), **/*.ts (every level)' }),
    excludePatterns: ExcludePatterns
  }, strict),
  get_file_info: Type.Object({ path: AgentPath() }, strict),
  grep: Type.Object({
    pattern: Type.String({ minLength: 1, maxLength: 1000, description: 'a literal, or a regex (ripgrep syntax) when isRegex' }),
    path: Type.String({ maxLength: 4096, default: '/', description: 'the subtree (or file) to search: /src, src and ./src are the same' }),
    isRegex: Type.Optional(SearchBody.properties.isRegex),
    caseSensitive: Type.Optional(SearchBody.properties.caseSensitive),
    wholeWord: Type.Optional(SearchBody.properties.wholeWord),
    include: Type.Optional(SearchBody.properties.include),
    exclude: Type.Optional(SearchBody.properties.exclude),
    contextLines: Type.Optional(SearchBody.properties.contextLines),
    maxResults: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'matches at most (the result says when there were more)' }))
  }, strict),
  list_allowed_directories: Type.Object({}, strict),
  list_changes: Type.Object({
    since: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'changes after this revision' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 }))
  }, strict),
  file_history: Type.Object({
    path: AgentPath(),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
    cursor: Type.Optional(Cursor)
  }, strict),
  revert_session: Type.Object({
    sessionId: Type.Optional(Id('the session to undo; default: this MCP session')),
    dryRun: Type.Optional(Type.Boolean({ description: 'compute and show the changes without applying them' })),
    force: Type.Optional(Type.Boolean({ description: 'leave paths another session changed afterwards as they are, revert the rest' }))
  }, strict),
  apply_batch: Type.Object({
    operations: Type.Array(Operation, { minItems: 1, maxItems: 1000, description: 'applied in one transaction: all or none' })
  }, strict),
  // the body of POST …/fork: a new workspace with this one's tree
  fork_workspace: ForkBody
} satisfies Record<string, TSchema>

export type McpToolName = keyof typeof McpArgs
export type McpArgs<N extends McpToolName> = Static<typeof McpArgs[N]>

/** Every tool's `structuredContent` (its `outputSchema`): the text, as the reference server gives it, and more. */
export const McpToolOutput = Type.Object({
  content: Type.String({ description: 'the text result, as in the content block' }),
  revision: Type.Optional(Type.Integer({ description: 'the workspace revision after a mutating tool' })),
  truncated: Type.Optional(Type.Boolean({ description: 'the text was cut at MCP_MAX_RESULT_BYTES; it ends with a note saying how to get the rest' }))
})
export type McpToolOutput = Static<typeof McpToolOutput>

/** Headers of the MCP endpoint: X-Session-Id as on every route, and the MCP session it maps to. */
export const McpHeaders = Type.Object({
  'x-session-id': Type.Optional(Id('a UUID, lower-case hex 8-4-4-4-12')),
  'mcp-session-id': Type.Optional(Id('the MCP session: a session of the activity log, issued by initialize'))
})
