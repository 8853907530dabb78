import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import t from 'tap'
import { listen, ROOT_DIR, TS_IMPORT, type Teardown } from '../helpers/app.js'
import { setup } from '../helpers/files.js'
import type { ActivityPage } from '../helpers/http.js'
import { answerOf } from '../helpers/mcp.js'

/**
 * The stdio entry point (`workbench-mcp`, src/workbench-mcp.ts) as an MCP client runs it: a child
 * process speaking JSON-RPC on stdin/stdout, bridged to a listening server over HTTP.
 */

interface Bridge { client: Client, stderr: () => string }

const BUILT = join(ROOT_DIR, 'dist/src/workbench-mcp.js')

/** Runs the bin from source (through test/loader), or (`built`) the compiled file itself, as npm's bin link would. */
async function spawnBridge (t: Teardown, args: string[], env: Record<string, string>, built = false): Promise<Bridge> {
  const transport = new StdioClientTransport({
    command: built ? BUILT : process.execPath,
    args: built ? args : [...TS_IMPORT, join(ROOT_DIR, 'src/workbench-mcp.ts'), ...args],
    cwd: ROOT_DIR,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stderr: 'pipe'
  })
  let stderr = ''
  transport.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const client = new Client({ name: 'stdio-test', version: '1.0.0' })
  t.teardown(async () => { await client.close() })
  await client.connect(transport)
  return { client, stderr: () => stderr }
}

const call = async (client: Client, name: string, args: Record<string, unknown> = {}) =>
  answerOf(await client.callTool({ name, arguments: args }) as CallToolResult)

t.test('the bin bridges stdio to the HTTP endpoint: tools, results, errors, and its own MCP session', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  const { client, stderr } = await spawnBridge(t, ['--url', base, '--workspace', ctx.ws], { WORKBENCH_TOKEN: ctx.user.token })
  const { tools } = await client.listTools()
  t.ok(tools.some(x => x.name === 'edit_file' || x.name === 'write_file'), 'the server\'s tools')
  t.equal(tools.length, (await import('../../src/mcp/tools.js')).TOOLS.length, 'all of them')
  const w = await call(client, 'write_file', { path: 'from-stdio.ts', content: 'hi' })
  t.match(w.text, /^Successfully wrote to from-stdio\.ts\nrevision: 1 /)
  t.equal((await call(client, 'read_text_file', { path: '/from-stdio.ts' })).text, 'hi')
  const missing = await call(client, 'read_text_file', { path: 'nope' })
  t.same([missing.isError, missing.text.split(':')[0]], [true, 'FILE_NOT_FOUND'])
  const sid = /session ([0-9a-f-]{36})/.exec(stderr())?.[1]
  t.ok(sid, `the bridge names its session on stderr: ${stderr()}`)
  const log = (await ctx.getUrl(`/v1/sessions/${sid ?? ''}/activity`)).json<ActivityPage>()
  t.match(log.items.map(e => [e.type, e.path, e.status]), [['file.write', '/from-stdio.ts', 201]], 'its work is in that session')
})

t.test('--session joins a given session; an expired or bad token is renewed with the refresh token', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  const session = '6a1f6d3e-4a7b-4c1e-9f2a-0d5b8c7e6f10'
  const { client } = await spawnBridge(t, ['--url', base + '/', '--workspace', ctx.ws, '--token', 'not-a-valid-token', '--session', session],
    { WORKBENCH_REFRESH_TOKEN: ctx.user.refreshToken })
  const w = await call(client, 'create_directory', { path: 'made' })
  t.notOk(w.isError, w.text)
  t.equal((await ctx.changes()).changes[0]?.sessionId, session)
})

t.test('a workspace the server refuses: the client gets the error, not a hang', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  await t.rejects(spawnBridge(t, ['--url', base, '--workspace', '00000000-0000-4000-8000-000000000000'], { WORKBENCH_TOKEN: ctx.user.token }),
    /WORKSPACE_NOT_FOUND/)
})

// CI builds before it tests; a working copy may not have dist/ (or an older one: rebuild).
t.test('the built bin runs as an executable (shebang, mode) from dist/', { skip: existsSync(BUILT) ? false : 'no dist/ build' }, async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  const { client } = await spawnBridge(t, ['--url', base, '--workspace', ctx.ws], { WORKBENCH_TOKEN: ctx.user.token }, true)
  t.equal((await call(client, 'list_allowed_directories')).text, 'Allowed directories:\n/')
})
