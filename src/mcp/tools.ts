import picomatch from 'picomatch'
import type { Actor } from '../accounts/auth.js'
import { batchError, errors, toAppError } from '../core/errors.js'
import { ROOT, parentOf } from '../files/paths.js'
import type { FileService } from '../files/service.js'
import type { SearchService } from '../search/service.js'
import { ActivityType, type SnapshotService } from '../snapshots/service.js'
import { MutationType } from '../mutations/activity.js'
import type { McpArgs, McpToolName } from '../../schemas/mcp.js'
import type { FileMeta, Operation } from '../../schemas/files.js'
import { changeLine, countLines, errorText, formatSize, revisionLine } from './format.js'
import { agentPath, relativeTo } from './paths.js'

/**
 * The MCP tools: each is a door to the file service, as a REST route and an RPC method are
 * (docs/architecture.md), so its results, errors and activity entries are theirs. Names, argument
 * names and result texts follow the reference filesystem server where it has the tool; the
 * differences are listed in docs/api.md ("MCP").
 */

export interface ToolContext {
  files: FileService
  search: SearchService
  /** snapshots and forks (fork_workspace) */
  snapshots: SnapshotService
  actor: Actor
  workspaceId: string
  maxResultBytes: number
  /** a 500's own message is shown only in development, as REST does */
  exposeInternal: boolean
}

export interface ToolResult {
  text: string
  /** the workspace revision after a mutating tool */
  revision?: number
  /** the text was already cut to fit (the tool did it itself, with its own note) */
  truncated?: boolean
  /** what to call for the rest when the text must be cut: given the whole lines and bytes shown */
  rest?: (linesShown: number, bytesShown: number) => string
}

export interface ToolAnnotations {
  title: string
  readOnlyHint: boolean
  destructiveHint: boolean
  idempotentHint: boolean
  openWorldHint: false
}

export interface Tool {
  name: McpToolName
  description: string
  annotations: ToolAnnotations
  /** a mutating tool's activity type: its refusals before the service are logged, as REST's */
  activity?: string
  /** the operation a refused call is logged with */
  op?: string
  run: (ctx: ToolContext, args: Record<string, unknown>) => Promise<ToolResult>
}

/** Entries a listing or search reads at most (pages of the tree); past it, the result says so. */
export const MAX_SCAN_ENTRIES = 100_000
const PAGE = 5000

const read = (title: string) => ({ title, readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false as const })
const write = (title: string, destructive: boolean, idempotent: boolean) =>
  ({ title, readOnlyHint: false, destructiveHint: destructive, idempotentHint: idempotent, openWorldHint: false as const })

function tool<N extends McpToolName> (name: N, description: string, annotations: ToolAnnotations,
  run: (ctx: ToolContext, args: McpArgs<N>) => Promise<ToolResult>, mutation?: { activity: string, op?: string }): Tool {
  return {
    name,
    description,
    annotations,
    ...(mutation === undefined ? {} : mutation),
    run: async (ctx, args) => await run(ctx, args as McpArgs<N>)
  }
}

// --- reading ---

/**
 * A file's text, or the lines `lines` names (`A-B`, `A-`, `-N`: the service's ranged read): a
 * directory is IS_A_DIRECTORY, bytes that are not UTF-8 NOT_TEXT.
 */
async function readText (ctx: ToolContext, path: string, lines?: string): Promise<{ path: string, text: string, start: number, end: number, total: number }> {
  const canonical = agentPath(path)
  const { entry } = await ctx.files.read(ctx.actor, { workspaceId: ctx.workspaceId, path: canonical, ...(lines === undefined ? {} : { lines }) })
  if (entry.kind === 'directory' || entry.content === undefined) throw errors.isADirectory(entry.path)
  if (entry.encoding !== 'utf8') throw errors.notText(entry.path)
  const total = entry.totalLines ?? countLines(entry.content)
  return { path: canonical, text: entry.content, start: entry.lines?.start ?? 1, end: entry.lines?.end ?? total, total }
}

const readLinesHint = (path: string, nextLine: number, end?: number) =>
  `Read the rest with read_lines {"path": ${JSON.stringify(path)}, "lines": "${nextLine}-${end ?? ''}"}.`

// --- listing ---

async function listing (ctx: ToolContext, path: string): Promise<{ path: string, children: FileMeta[], truncated: boolean }> {
  const canonical = agentPath(path)
  const { entry } = await ctx.files.read(ctx.actor, { workspaceId: ctx.workspaceId, path: canonical })
  if (entry.kind !== 'directory' || entry.children === undefined) throw errors.notADirectory(canonical)
  return { path: canonical, children: entry.children, truncated: entry.childrenTruncated === true }
}

const childrenNote = (path: string) =>
  `\n[more than 10000 entries in ${path}: this lists the first 10000 by name; find the others with search_files]`

/**
 * Every entry under `base`, in the order a depth-first walk meets them (a directory, then what
 * is under it; siblings by name), read in pages of the tree; stops after MAX_SCAN_ENTRIES.
 */
async function walk (ctx: ToolContext, base: string): Promise<{ entries: FileMeta[], complete: boolean }> {
  const entries: FileMeta[] = []
  let cursor: string | undefined
  do {
    const page = await ctx.files.tree(ctx.actor, ctx.workspaceId, { path: base, depth: 0, limit: PAGE, ...(cursor === undefined ? {} : { cursor }) })
    entries.push(...page.entries)
    cursor = page.nextCursor ?? undefined
  } while (cursor !== undefined && entries.length < MAX_SCAN_ENTRIES)
  const complete = cursor === undefined
  // Bytewise path order puts `/a/b-c` between `/a/b` and `/a/b/x`; a walk visits `/a/b/x` first.
  const keyed = entries.map(e => ({ key: e.path.replaceAll('/', '\u0000'), e }))
  keyed.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  return { entries: keyed.map(k => k.e), complete }
}

/** Leaves out what `excluded` matches (its path relative to `base`) and everything under it. */
function prune (entries: FileMeta[], base: string, excluded: (relative: string) => boolean): FileMeta[] {
  const out: FileMeta[] = []
  const gone = new Set<string>()
  for (const e of entries) {
    const parent = parentOf(e.path)
    if (parent !== base && gone.has(parent)) { gone.add(e.path); continue }
    if (excluded(relativeTo(base, e.path))) { gone.add(e.path); continue }
    out.push(e)
  }
  return out
}

const scanNote = (base: string) =>
  `\n[stopped after ${MAX_SCAN_ENTRIES} entries under ${base}: search a subdirectory for the rest]`

interface TreeNode { name: string, type: 'file' | 'directory', children?: TreeNode[] }

/** The reference server's tree: `{ name, type, children? }`, 2-space JSON, of the first `count` entries. */
function renderTree (entries: FileMeta[], base: string, count: number): string {
  const roots: TreeNode[] = []
  const nodes = new Map<string, TreeNode>()
  for (const e of entries.slice(0, count)) {
    const node: TreeNode = e.kind === 'directory' ? { name: e.name, type: 'directory', children: [] } : { name: e.name, type: 'file' }
    nodes.set(e.path, node)
    const parent = parentOf(e.path)
    if (parent === base) roots.push(node)
    else nodes.get(parent)?.children?.push(node)
  }
  return JSON.stringify(roots, null, 2)
}

/** The reference server's directory_tree exclusion: a pattern with `*` as a glob; a bare name anywhere, with what is under it. */
function treeExcluder (patterns: string[]): (relative: string) => boolean {
  const matchers = patterns.map(p => p.includes('*')
    ? picomatch(p, { dot: true })
    : picomatch([p, `**/${p}`, `**/${p}/**`], { dot: true }))
  return relative => matchers.some(m => m(relative))
}

// --- mutating ---

const ofData = (data: FileMeta | { deleted: number }): string =>
  'deleted' in data ? `deleted ${data.deleted} entries` : `${data.kind} ${data.path}, etag ${data.etag}`

/** An operation's paths as agents write them, made canonical before the service sees it. */
function canonicalOperation (op: Operation, index: number): Operation {
  try {
    return { ...op, path: agentPath(op.path), ...(op.newPath === undefined ? {} : { newPath: agentPath(op.newPath) }) }
  } catch (err) {
    // As the batch names any failing operation: its index and code in details.
    throw batchError(index, toAppError(err))
  }
}

export const TOOLS: Tool[] = [
  tool('read_text_file',
    'Read the complete contents of a file as text. Use the \'head\' parameter to read only the first N lines of a file, ' +
    'or the \'tail\' parameter to read only the last N lines (read_lines reads any range). Results over the size cap end ' +
    'with a note saying which read_lines call returns the rest.',
    read('Read Text File'),
    async (ctx, { path, head, tail }) => {
      if (head !== undefined && tail !== undefined) throw errors.validation('Cannot specify both head and tail parameters simultaneously')
      const range = head !== undefined ? `1-${head}` : tail !== undefined ? `-${tail}` : undefined
      const file = await readText(ctx, path, range)
      return { text: file.text, rest: lines => readLinesHint(file.path, file.start + lines, head === undefined ? undefined : file.end) }
    }),

  tool('read_multiple_files',
    'Read the contents of several files (at most 100) at once. Each file\'s content is returned with its path as a ' +
    'reference; a failed read of one file does not stop the others.',
    read('Read Multiple Files'),
    async (ctx, { paths }) => {
      const parts: string[] = []
      // A few at a time: each read may be a query.
      for (let i = 0; i < paths.length; i += 8) {
        parts.push(...await Promise.all(paths.slice(i, i + 8).map(async p => {
          try {
            return `${p}:\n${(await readText(ctx, p)).text}\n`
          } catch (err) {
            return `${p}: Error - ${errorText(err, ctx.exposeInternal)}`
          }
        })))
      }
      return { text: parts.join('\n---\n'), rest: () => 'Read the files not shown in full one at a time with read_text_file (read_lines for a long one).' }
    }),

  tool('read_lines',
    'Read a range of lines of a text file: "10-20", "10-" (to the end) or "-5" (the last 5 lines), 1-based and inclusive. ' +
    'The first line of the result says which lines these are and how many the file has.',
    read('Read Lines'),
    async (ctx, { path, lines }) => {
      const file = await readText(ctx, path, lines)
      return {
        text: `[${file.path}: lines ${file.start}-${file.end} of ${file.total}]\n${file.text}`,
        rest: shown => readLinesHint(file.path, file.start + Math.max(0, shown - 1), file.end)
      }
    }),

  tool('write_file',
    'Create a new file or completely overwrite an existing file with new content (UTF-8 text); missing parent ' +
    'directories are created. ifMatch: the etag the file must still have. States the new revision.',
    write('Write File', true, true),
    async (ctx, { path, content, ifMatch }) => {
      const { statusCode, body } = await ctx.files.write(ctx.actor, {
        workspaceId: ctx.workspaceId, path: agentPath(path), content, ...(ifMatch === undefined ? {} : { ifMatch })
      })
      const how = statusCode === 201 ? 'created' : 'updated'
      return { text: `Successfully wrote to ${path}\n${revisionLine(body.revision, `${how} ${body.file.path}, etag ${body.file.etag}, ${body.file.size ?? 0} bytes`)}`, revision: body.revision }
    }, { activity: MutationType.write }),

  tool('edit_file',
    'Replace exact text in a file: each edit\'s oldText must occur exactly once (CRLF and LF alike; replaceAll for every ' +
    'occurrence), and the edits apply in order, all or none. Returns a git-style diff and the new revision; dryRun ' +
    'returns the diff and changes nothing. EDIT_NO_MATCH names the closest lines, EDIT_AMBIGUOUS where the matches are.',
    write('Edit File', true, false),
    async (ctx, { path, edits, dryRun, ifMatch }) => {
      const { body } = await ctx.files.apply(ctx.actor, ctx.workspaceId, {
        type: 'edit', path: agentPath(path), edits, ...(dryRun === undefined ? {} : { dryRun }), ...(ifMatch === undefined ? {} : { ifMatch })
      })
      const diff = body.diff ?? ''
      // Fenced as the reference server fences it: with more backticks than the diff holds.
      let fence = '```'
      while (diff.includes(fence)) fence += '`'
      const shown = `${fence}diff\n${diff}${diff === '' || diff.endsWith('\n') ? '' : '\n'}${fence}\n\n`
      const data = body.data
      const etag = 'etag' in data ? data.etag : '?'
      return dryRun === true
        ? { text: `${shown}dry run: nothing changed (the file's etag is still ${etag})`, rest: () => 'Read the file with read_lines to see the text.' }
        : { text: `${shown}${revisionLine(body.revision, `etag ${etag}`)}`, revision: body.revision, rest: () => 'The edit is applied; read the file with read_lines to see it.' }
    }, { activity: MutationType.operation, op: 'edit' }),

  tool('create_directory',
    'Create a new directory or ensure a directory exists, with its missing parents. If the directory already exists, ' +
    'this succeeds and changes nothing. States the revision.',
    write('Create Directory', false, true),
    async (ctx, { path }) => {
      const { body } = await ctx.files.apply(ctx.actor, ctx.workspaceId, { type: 'mkdir', path: agentPath(path) })
      return { text: `Successfully created directory ${path}\n${revisionLine(body.revision)}`, revision: body.revision }
    }, { activity: MutationType.operation, op: 'mkdir' }),

  tool('list_directory',
    'List the files and directories in a directory, one level, by name: [FILE] and [DIR] prefixes.',
    read('List Directory'),
    async (ctx, { path }) => {
      const dir = await listing(ctx, path)
      const text = dir.children.map(c => `${c.kind === 'directory' ? '[DIR]' : '[FILE]'} ${c.name}`).join('\n')
      return { text: text + (dir.truncated ? childrenNote(dir.path) : ''), rest: () => 'Find entries with search_files, or list subdirectories.' }
    }),

  tool('list_directory_with_sizes',
    'List the files and directories in a directory with their sizes, then totals: [FILE] and [DIR] prefixes.',
    read('List Directory with Sizes'),
    async (ctx, { path, sortBy }) => {
      const dir = await listing(ctx, path)
      const sorted = [...dir.children].sort(sortBy === 'size'
        ? (a, b) => (b.size ?? 0) - (a.size ?? 0)
        : (a, b) => a.name.localeCompare(b.name))
      const lines = sorted.map(c => c.kind === 'directory'
        ? `[DIR] ${c.name.padEnd(30)} `
        : `[FILE] ${c.name.padEnd(30)} ${formatSize(c.size ?? 0).padStart(10)}`)
      const files = dir.children.filter(c => c.kind === 'file')
      const total = files.reduce((sum, c) => sum + (c.size ?? 0), 0)
      const text = [...lines, '', `Total: ${files.length} files, ${dir.children.length - files.length} directories`, `Combined size: ${formatSize(total)}`].join('\n')
      return { text: text + (dir.truncated ? childrenNote(dir.path) : ''), rest: () => 'Find entries with search_files, or list subdirectories.' }
    }),

  tool('directory_tree',
    'A recursive tree of files and directories as JSON: each entry has \'name\' and \'type\' (file/directory), and ' +
    'directories a \'children\' array. excludePatterns: globs (or bare names, matched at any depth) to leave out.',
    read('Directory Tree'),
    async (ctx, { path, excludePatterns }) => {
      const base = agentPath(path)
      const { entries: all, complete } = await walk(ctx, base)
      const entries = prune(all, base, treeExcluder(excludePatterns ?? []))
      let text = renderTree(entries, base, entries.length)
      // Room for the note, which names one path (at most 1024 bytes).
      const budget = ctx.maxResultBytes - 2048
      let truncated = false
      const full = Buffer.byteLength(text)
      if (full > budget) {
        // The longest prefix (in walk order) whose tree fits; searched below twice the share of
        // entries that fits on average, so no render but the first is much over the budget.
        let lo = 0
        let hi = Math.min(entries.length - 1, Math.ceil(entries.length * budget / full) * 2)
        while (hi < entries.length - 1 && Buffer.byteLength(renderTree(entries, base, hi)) <= budget) hi = Math.min(entries.length - 1, Math.max(1, hi * 2))
        while (lo < hi) {
          const mid = Math.ceil((lo + hi) / 2)
          if (Buffer.byteLength(renderTree(entries, base, mid)) <= budget) lo = mid
          else hi = mid - 1
        }
        text = renderTree(entries, base, lo) + `\n[truncated: the tree has ${entries.length}${complete ? '' : '+'} entries, over MCP_MAX_RESULT_BYTES ` +
          `(${ctx.maxResultBytes}); shown: the first ${lo} in depth-first order. The next is ${entries[lo]?.path ?? '?'}: ` +
          'call directory_tree on its directory, or leave parts out with excludePatterns.]'
        truncated = true
      }
      if (!complete) text += scanNote(base)
      return { text, truncated }
    }),

  tool('move_file',
    'Move or rename a file or a directory (with everything under it) in one change. If the destination exists, the ' +
    'move fails (TARGET_EXISTS). States the new revision.',
    write('Move File', true, false),
    async (ctx, { source, destination }) => {
      const { body } = await ctx.files.apply(ctx.actor, ctx.workspaceId, { type: 'move', path: agentPath(source), newPath: agentPath(destination) })
      return { text: `Successfully moved ${source} to ${destination}\n${revisionLine(body.revision)}`, revision: body.revision }
    }, { activity: MutationType.operation, op: 'move' }),

  tool('copy_file',
    'Copy a file or a directory (with everything under it) in one change. If the destination exists the copy fails ' +
    '(TARGET_EXISTS), unless overwrite and both are files. States the new revision.',
    write('Copy File', true, false),
    async (ctx, { source, destination, overwrite }) => {
      const { body } = await ctx.files.apply(ctx.actor, ctx.workspaceId, {
        type: 'copy', path: agentPath(source), newPath: agentPath(destination), ...(overwrite === undefined ? {} : { overwrite })
      })
      return { text: `Successfully copied ${source} to ${destination}\n${revisionLine(body.revision)}`, revision: body.revision }
    }, { activity: MutationType.operation, op: 'copy' }),

  tool('delete',
    'Delete a file, or a directory with everything under it. ifMatch: the etag it must still have. States the new revision.',
    write('Delete', true, true),
    async (ctx, { path, ifMatch }) => {
      const { body } = await ctx.files.remove(ctx.actor, { workspaceId: ctx.workspaceId, path: agentPath(path), ...(ifMatch === undefined ? {} : { ifMatch }) })
      return { text: `Successfully deleted ${path} (${body.deleted} ${body.deleted === 1 ? 'entry' : 'entries'})\n${revisionLine(body.revision)}`, revision: body.revision }
    }, { activity: MutationType.delete }),

  tool('search_files',
    'Search for files and directories whose path, relative to path, matches a glob: \'*.ts\' matches this level, ' +
    '\'**/*.ts\' every level. Returns the workspace paths of the matches, in walk order, or \'No matches found\'.',
    read('Search Files'),
    async (ctx, { path, pattern, excludePatterns }) => {
      const base = agentPath(path)
      const { entries: all, complete } = await walk(ctx, base)
      const excludes = (excludePatterns ?? []).map(p => picomatch(p, { dot: true }))
      const entries = prune(all, base, rel => excludes.some(m => m(rel)))
      const matches = picomatch(pattern, { dot: true })
      const found = entries.filter(e => matches(relativeTo(base, e.path))).map(e => e.path)
      const text = found.length > 0 ? found.join('\n') : 'No matches found'
      return { text: text + (complete ? '' : scanNote(base)), rest: () => 'Search a subdirectory, or narrow the pattern.' }
    }),

  tool('grep',
    'Search the contents of the workspace\'s text files (ripgrep semantics: a literal, or a regex with isRegex; smart case ' +
    'by default; include/exclude globs). Returns path:line:column: line for each match, in path then line order, with ' +
    'contextLines around it, then a summary line with the revision searched.',
    read('Search File Contents'),
    async (ctx, { pattern, path, isRegex, caseSensitive, wholeWord, include, exclude, contextLines, maxResults }) => {
      const result = await ctx.search.search(ctx.actor, {
        workspaceId: ctx.workspaceId,
        query: pattern,
        path: agentPath(path),
        ...(isRegex === undefined ? {} : { isRegex }),
        ...(caseSensitive === undefined ? {} : { caseSensitive }),
        ...(wholeWord === undefined ? {} : { wholeWord }),
        ...(include === undefined ? {} : { include }),
        ...(exclude === undefined ? {} : { exclude }),
        ...(contextLines === undefined ? {} : { contextLines }),
        maxResults: maxResults ?? 100
      })
      const lines: string[] = []
      for (const m of result.matches) {
        m.before.forEach((text, i) => { lines.push(`${m.path}-${m.line - m.before.length + i}-${text}`) })
        lines.push(`${m.path}:${m.line}:${m.column}: ${m.preview}`)
        m.after.forEach((text, i) => { lines.push(`${m.path}-${m.line + 1 + i}-${text}`) })
      }
      const found = result.matches.length === 0 ? 'No matches found' : lines.join('\n')
      const more = result.timedOut
        ? '; the time budget ran out: narrow the path or the pattern for the rest'
        : result.truncated ? '; there are more: narrow the path or the pattern, or raise maxResults' : ''
      return {
        text: `${found}\n[${result.matches.length} ${result.matches.length === 1 ? 'match' : 'matches'} in ${result.filesMatched} of ${result.filesSearched} files at revision ${result.revision}${more}]`,
        rest: () => 'Narrow the path or the pattern, or read the files with read_lines.'
      }
    }),

  tool('get_file_info',
    'Metadata of a file or a directory: size, creation and modification times, type, and this server\'s etag, version, ' +
    'sha256 and MIME type, without reading the content.',
    read('Get File Info'),
    async (ctx, { path }) => {
      const canonical = agentPath(path)
      const { entry, revision } = await ctx.files.read(ctx.actor, { workspaceId: ctx.workspaceId, path: canonical })
      const iso = (d: Date | string) => d instanceof Date ? d.toISOString() : d
      const info: Array<[string, unknown]> = [
        ['size', entry.size ?? 0],
        ['created', iso(entry.createdAt)],
        ['modified', iso(entry.updatedAt)],
        ['isDirectory', entry.kind === 'directory'],
        ['isFile', entry.kind === 'file'],
        ['path', entry.path],
        ['mimeType', entry.mimeType],
        ['etag', entry.etag],
        ['version', entry.version],
        ['sha256', entry.sha256],
        ['createdBy', entry.createdBy],
        ['updatedBy', entry.updatedBy],
        ['metadata', JSON.stringify(entry.metadata)],
        ['revision', revision]
      ]
      return { text: info.map(([k, v]) => `${k}: ${String(v)}`).join('\n') }
    }),

  tool('list_allowed_directories',
    'The directories this server may access: the workspace\'s root, /. Every path is inside it.',
    read('List Allowed Directories'),
    async () => ({ text: `Allowed directories:\n${ROOT}` })),

  tool('list_changes',
    'The workspace\'s change feed after a revision, oldest first: one line per change (revision, op, kind, path, session, time). ' +
    'The first line is the head revision.',
    read('List Changes'),
    async (ctx, { since, limit }) => {
      const r = await ctx.files.changes(ctx.actor, ctx.workspaceId, since ?? 0, limit ?? 100)
      const lines = [`head: ${r.head}${r.reset === true ? ' (reset: since is no longer retained or ahead of the head; read the tree again)' : ''}`, ...r.changes.map(changeLine)]
      const last = r.changes.at(-1)
      if (last !== undefined && last.revision < r.head) lines.push(`[more: call list_changes with since=${last.revision}]`)
      return {
        text: lines.join('\n'),
        rest: shown => `Call list_changes with since=${r.changes[Math.max(0, shown - 2)]?.revision ?? since ?? 0} and a smaller limit.`
      }
    }),

  tool('file_history',
    'The changes that touched a path, newest first, following it across moves. A next page, when there is one, is named by its cursor.',
    read('File History'),
    async (ctx, { path, limit, cursor }) => {
      const r = await ctx.files.history(ctx.actor, ctx.workspaceId, agentPath(path), limit ?? 50, cursor)
      const lines = r.items.map(changeLine)
      if (r.items.length === 0) lines.push('No changes')
      if (r.nextCursor !== null) lines.push(`[more: call file_history with cursor=${JSON.stringify(r.nextCursor)}]`)
      return { text: lines.join('\n'), rest: () => 'Call file_history with a smaller limit.' }
    }),

  tool('revert_session',
    'Undo everything a session changed in this workspace (default: this MCP session), as new changes in one ' +
    'transaction. REVERT_CONFLICT when another session changed the same paths afterwards, unless force (then those ' +
    'paths are left as they are). dryRun shows the changes without applying them. States the new revision.',
    write('Revert Session', true, false),
    async (ctx, { sessionId, dryRun, force }) => {
      const session = sessionId ?? ctx.actor.sessionId
      const { body } = await ctx.files.revert(ctx.actor, ctx.workspaceId, {
        sessionId: session, ...(dryRun === undefined ? {} : { dryRun }), ...(force === undefined ? {} : { force })
      })
      const lines = [
        `${dryRun === true ? 'Would revert' : 'Reverted'} session ${session}: ${body.changes.length} changes`,
        ...body.changes.map(changeLine),
        ...(body.conflicts.length === 0 ? [] : [`left as another session left them: ${body.conflicts.join(', ')}`]),
        dryRun === true ? `dry run: nothing changed (it would end at revision ${body.revision})` : revisionLine(body.revision)
      ]
      return { text: lines.join('\n'), ...(dryRun === true ? {} : { revision: body.revision }), rest: () => 'The revert is complete; list its changes with list_changes.' }
    }, { activity: MutationType.revert }),

  tool('apply_batch',
    'Apply several operations (create, update, delete, move, copy, mkdir; the operations of POST /operations) in one ' +
    'transaction: all of them or none. On a failure the error names the failing operation\'s index. States the new revision.',
    write('Apply Batch', true, false),
    async (ctx, { operations }) => {
      const ops = operations.map((op, i) => canonicalOperation(op, i))
      const { body } = await ctx.files.batch(ctx.actor, ctx.workspaceId, ops)
      const lines = body.results.map((r, i) => `${i}: ${ops[i]?.type ?? '?'} ${ops[i]?.path ?? ''} -> ${ofData(r.data)} (revision ${r.revision})`)
      return { text: `Applied ${ops.length} operations\n${lines.join('\n')}\n${revisionLine(body.revision)}`, revision: body.revision, rest: () => 'The batch is complete; list its changes with list_changes.' }
    }, { activity: MutationType.batch }),

  tool('fork_workspace',
    'Fork this workspace: a new workspace, yours, holding this one\'s files and directories as they are (or as they were ' +
    'at revision) as its revision 1, to try something without touching this one. Copies no bytes, so it is quick. ' +
    'Answers the new workspace\'s id: connect to its own MCP endpoint (/v1/workspaces/<id>/mcp) to work in it.',
    write('Fork Workspace', false, false),
    async (ctx, args) => {
      const { body } = await ctx.snapshots.fork(ctx.actor, ctx.workspaceId, args)
      const from = body.forkedFrom
      return {
        text: `Forked workspace ${ctx.workspaceId} at revision ${from?.revision ?? 0} into ${body.id} (${JSON.stringify(body.name)})\n` +
          `workspace: ${body.id}\nmcp: /v1/workspaces/${body.id}/mcp\nrevision: ${body.revision} (of the fork)`
      }
    }, { activity: ActivityType.fork })
]
