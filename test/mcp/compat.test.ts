import { mkdtemp, realpath, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import t from 'tap'
import { listen, ROOT_DIR } from '../helpers/app.js'
import { setup } from '../helpers/files.js'
import { answerOf, connectMcp, type ToolAnswer } from '../helpers/mcp.js'

/**
 * Compatibility with the reference filesystem server (@modelcontextprotocol/server-filesystem):
 * the same sequence of tool calls against it, on a folder on disk, and against a workspace here;
 * the results must agree (content, listings, errors for the same mistakes), except for the
 * differences docs/api.md lists ("MCP", "Differences from the reference server"), each applied
 * below by name where it shows.
 */

interface Step {
  tool: string
  args: Record<string, unknown>
  /** how the two answers are compared; 'same' by default */
  compare?: 'same' | 'lines' | 'tree' | 'error' | 'info'
  /** a documented difference: what ours becomes before comparing */
  ours?: (text: string) => string
  /** a documented difference: what the reference's becomes before comparing */
  theirs?: (text: string) => string
  /** a documented difference where only one side fails */
  onlyTheyFail?: string
  onlyWeFail?: string
}

/** Mutating tools state the revision after them (docs: "every mutating tool's result states the new revision"). */
const withoutRevision = (text: string): string => text.replace(/\nrevision: \d+( \(.*\))?$/, '')
/** Errors start with the contract's code instead of Node's message; the per-file error inside read_multiple_files likewise. */
const fileErrors = (text: string): string => text.replace(/: Error - .*/g, ': Error - <error>')
/** head returns whole lines, the last one's line end included; the reference drops it. */
const headLineEnd = (text: string): string => text.replace(/\n$/, '')

function steps (root: string): Step[] {
  // The reference answers with paths on disk; ours are the workspace's (its root is /).
  const onDisk = (text: string): string => text.replaceAll(root, '')
  return [
    { tool: 'list_allowed_directories', args: {}, theirs: text => text.replace(root, '/') },
    { tool: 'create_directory', args: { path: 'src' }, ours: withoutRevision },
    { tool: 'create_directory', args: { path: 'src' }, ours: withoutRevision },
    { tool: 'write_file', args: { path: 'src/a.ts', content: 'one\ntwo\nthree' }, ours: withoutRevision },
    { tool: 'write_file', args: { path: 'README.md', content: '# hello\n' }, ours: withoutRevision },
    { tool: 'write_file', args: { path: './src/lib/util.ts', content: 'u' }, ours: withoutRevision, onlyTheyFail: 'missing parents are created' },
    { tool: 'create_directory', args: { path: 'src/lib' }, ours: withoutRevision },
    { tool: 'write_file', args: { path: './src/lib/util.ts', content: 'export const u = 1\n' }, ours: withoutRevision },
    { tool: 'write_file', args: { path: 'node_modules/dep/index.js', content: 'x' }, ours: withoutRevision, onlyTheyFail: 'missing parents are created' },
    { tool: 'create_directory', args: { path: 'node_modules/dep' }, ours: withoutRevision },
    { tool: 'write_file', args: { path: 'node_modules/dep/index.js', content: 'x' }, ours: withoutRevision },
    { tool: 'read_text_file', args: { path: 'src/a.ts' } },
    { tool: 'read_text_file', args: { path: './src/a.ts' } },
    { tool: 'read_text_file', args: { path: '/src/a.ts' }, onlyTheyFail: 'an absolute path is a workspace path, / its root' },
    { tool: 'read_text_file', args: { path: 'src/a.ts', head: 2 }, ours: headLineEnd },
    { tool: 'read_text_file', args: { path: 'src/a.ts', tail: 2 } },
    { tool: 'read_text_file', args: { path: 'src/a.ts', head: 1, tail: 1 }, compare: 'error' },
    { tool: 'read_text_file', args: { path: 'missing.ts' }, compare: 'error' },
    { tool: 'read_text_file', args: { path: 'src' }, compare: 'error' },
    { tool: 'read_text_file', args: { path: '../outside.txt' }, compare: 'error' },
    { tool: 'read_multiple_files', args: { paths: ['src/a.ts', 'missing.ts', 'README.md'] }, ours: fileErrors, theirs: fileErrors },
    { tool: 'list_directory', args: { path: '.' }, compare: 'lines' },
    { tool: 'list_directory', args: { path: 'src' }, compare: 'lines' },
    { tool: 'list_directory', args: { path: 'README.md' }, compare: 'error' },
    { tool: 'list_directory', args: { path: 'nowhere' }, compare: 'error' },
    { tool: 'list_directory_with_sizes', args: { path: 'src' } },
    { tool: 'list_directory_with_sizes', args: { path: '.', sortBy: 'size' }, compare: 'lines' },
    { tool: 'directory_tree', args: { path: '.' }, compare: 'tree' },
    { tool: 'directory_tree', args: { path: 'src' }, compare: 'tree' },
    { tool: 'directory_tree', args: { path: '.', excludePatterns: ['node_modules', '*.md'] }, compare: 'tree' },
    { tool: 'search_files', args: { path: '.', pattern: '**/*.ts' }, compare: 'lines', theirs: onDisk },
    { tool: 'search_files', args: { path: '.', pattern: '*.md' }, compare: 'lines', theirs: onDisk },
    { tool: 'search_files', args: { path: 'src', pattern: '*' }, compare: 'lines', theirs: onDisk },
    { tool: 'search_files', args: { path: '.', pattern: '**/*.ts', excludePatterns: ['src/lib'] }, compare: 'lines', theirs: onDisk },
    { tool: 'search_files', args: { path: '.', pattern: '*.rs' } },
    { tool: 'get_file_info', args: { path: 'src/a.ts' }, compare: 'info' },
    { tool: 'get_file_info', args: { path: 'missing' }, compare: 'error' },
    { tool: 'edit_file', args: { path: 'src/a.ts', edits: [{ oldText: 'two', newText: 'TWO' }], dryRun: true }, compare: 'lines', ours: () => '<diff>', theirs: () => '<diff>' },
    { tool: 'read_text_file', args: { path: 'src/a.ts' } },
    { tool: 'edit_file', args: { path: 'src/a.ts', edits: [{ oldText: 'two', newText: 'TWO' }, { oldText: 'three', newText: '3' }] }, ours: () => '<diff>', theirs: () => '<diff>' },
    { tool: 'read_text_file', args: { path: 'src/a.ts' } },
    { tool: 'edit_file', args: { path: 'src/a.ts', edits: [{ oldText: 'not there', newText: 'x' }] }, compare: 'error' },
    { tool: 'write_file', args: { path: 'src/indented.ts', content: 'if (a) {\n    go()\n}\n' }, ours: withoutRevision },
    { tool: 'edit_file', args: { path: 'src/indented.ts', edits: [{ oldText: 'if (a) {\n  go()\n}', newText: 'if (b) {\n  go()\n}' }] }, onlyWeFail: 'oldText must match exactly: no whitespace-flexible fallback' },
    { tool: 'edit_file', args: { path: 'missing.ts', edits: [{ oldText: 'a', newText: 'b' }] }, compare: 'error' },
    { tool: 'move_file', args: { source: 'src/a.ts', destination: 'src/b.ts' }, ours: withoutRevision },
    { tool: 'move_file', args: { source: 'src/b.ts', destination: 'README.md' }, compare: 'error' },
    { tool: 'move_file', args: { source: 'src/gone.ts', destination: 'src/c.ts' }, compare: 'error' },
    { tool: 'move_file', args: { source: 'src/b.ts', destination: '../escape.ts' }, compare: 'error' },
    { tool: 'create_directory', args: { path: 'README.md' }, compare: 'error' },
    { tool: 'write_file', args: { path: 'README.md', content: 'replaced' }, ours: withoutRevision },
    { tool: 'read_multiple_files', args: { paths: ['README.md', 'src/b.ts'] } },
    { tool: 'directory_tree', args: { path: '.' }, compare: 'tree' }
  ]
}

type Tree = Array<{ name: string, type: string, children?: Tree }>
const sortTree = (tree: Tree): Tree => [...tree].sort((a, b) => a.name < b.name ? -1 : 1)
  .map(e => e.children === undefined ? e : { ...e, children: sortTree(e.children) })
const sortedLines = (text: string): string[] => text.split('\n').sort()
const info = (text: string): Record<string, string> => {
  const map = Object.fromEntries(text.split('\n').map(l => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]))
  // The keys both have whose values agree; the times are the store's own (docs: get_file_info).
  return { size: map.size ?? '', isDirectory: map.isDirectory ?? '', isFile: map.isFile ?? '' }
}

t.test('the same tool calls against the reference filesystem server and this one agree, but for the documented differences', async t => {
  const folder = await realpath(await mkdtemp(join(tmpdir(), 'wb-mcp-compat-')))
  t.teardown(async () => { await rm(folder, { recursive: true, force: true }) })
  const reference = new Client({ name: 'compat', version: '1' })
  await reference.connect(new StdioClientTransport({
    command: process.execPath,
    args: [join(ROOT_DIR, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js'), folder],
    stderr: 'ignore'
  }))
  t.teardown(async () => { await reference.close() })
  const ctx = await setup(t)
  const ours = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)

  await t.test('every reference tool we offer takes the same arguments', async t => {
    const theirs = (await reference.listTools()).tools
    const mine = new Map((await ours.client.listTools()).tools.map(x => [x.name, x]))
    for (const tool of theirs) {
      // Documented: read_file (deprecated there) and read_media_file are not offered.
      if (tool.name === 'read_file' || tool.name === 'read_media_file') continue
      const our = mine.get(tool.name)
      if (our === undefined) { t.fail(`${tool.name} is missing`); continue }
      const want = Object.keys(tool.inputSchema.properties ?? {})
      t.same(want.filter(k => !(k in (our.inputSchema.properties ?? {}))), [], `${tool.name}: every argument (${want.join(', ')})`)
      t.same([...(our.inputSchema.required ?? [])].sort(), [...(tool.inputSchema.required ?? [])].sort(), `${tool.name}: the same required ones`)
      t.equal(our.annotations?.readOnlyHint ?? false, tool.annotations?.readOnlyHint ?? false, `${tool.name}: readOnlyHint`)
    }
  })

  await t.test('the sequence', async t => {
    for (const [i, step] of steps(folder).entries()) {
      const what = `${i}: ${step.tool} ${JSON.stringify(step.args)}`
      const ref: ToolAnswer = answerOf(await reference.callTool({ name: step.tool, arguments: step.args }) as CallToolResult)
      const our: ToolAnswer = await ours.call(step.tool, step.args)
      if (step.onlyWeFail !== undefined) {
        t.ok(!ref.isError && our.isError, `${what}: documented (${step.onlyWeFail}); reference: ${ref.text.slice(0, 200)}; ours: ${our.text.slice(0, 200)}`)
        continue
      }
      if (step.onlyTheyFail !== undefined) {
        t.ok(ref.isError && !our.isError, `${what}: documented (${step.onlyTheyFail}); reference: ${ref.text}; ours: ${our.text}`)
        continue
      }
      t.equal(our.isError, ref.isError, `${what}: both ${ref.isError ? 'fail' : 'succeed'} (reference: ${ref.text.slice(0, 200)}; ours: ${our.text.slice(0, 200)})`)
      if (step.compare === 'error' || ref.isError) {
        if (our.isError) t.match(our.text, /^[A-Z_]+: /, `${what}: our error starts with the contract's code`)
        continue
      }
      const a = (step.ours ?? (x => x))(our.text)
      const b = (step.theirs ?? (x => x))(ref.text)
      switch (step.compare ?? 'same') {
        case 'lines': t.same(sortedLines(a), sortedLines(b), what); break
        case 'tree': t.same(sortTree(JSON.parse(a) as Tree), sortTree(JSON.parse(b) as Tree), what); break
        case 'info': t.same(info(a), info(b), what); break
        default: t.equal(a, b, what)
      }
    }
  })
})
