#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

/**
 * `workbench-mcp`: the MCP server of a workspace for clients that speak only stdio. It runs no
 * server of its own: every message read on stdin goes to a running Workbench server's
 * /v1/workspaces/{id}/mcp over HTTP (the SDK's Streamable HTTP client transport), and every
 * answer comes back on stdout. Diagnostics go to stderr; stdout carries only JSON-RPC.
 *
 *   workbench-mcp --url http://127.0.0.1:3000 --token <accessToken> --workspace <id>
 *
 * The token may come from WORKBENCH_TOKEN instead (a command line is visible to other users), and
 * with --refresh-token (or WORKBENCH_REFRESH_TOKEN) an expired access token is renewed through
 * POST /v1/auth/refresh. --session <uuid> sends X-Session-Id: the calls join that session
 * instead of the new one `initialize` starts.
 */

const USAGE = `usage: workbench-mcp --url <server URL> --token <access token> --workspace <workspace id> [--session <uuid>] [--refresh-token <token>]
  environment: WORKBENCH_URL, WORKBENCH_TOKEN, WORKBENCH_WORKSPACE, WORKBENCH_SESSION, WORKBENCH_REFRESH_TOKEN`

interface Options { url: string, token: string, workspace: string, session?: string, refreshToken?: string }

function options (): Options {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      workspace: { type: 'string' },
      session: { type: 'string' },
      'refresh-token': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true
  })
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  const env = process.env
  const url = values.url ?? env.WORKBENCH_URL
  const token = values.token ?? env.WORKBENCH_TOKEN
  const workspace = values.workspace ?? env.WORKBENCH_WORKSPACE
  const session = values.session ?? env.WORKBENCH_SESSION
  const refreshToken = values['refresh-token'] ?? env.WORKBENCH_REFRESH_TOKEN
  if (url === undefined || token === undefined || workspace === undefined) throw new Error('--url, --token and --workspace are required')
  return { url, token, workspace, ...(session === undefined ? {} : { session }), ...(refreshToken === undefined ? {} : { refreshToken }) }
}

async function main (): Promise<void> {
  const opts = options()
  const base = opts.url.replace(/\/+$/, '')
  const endpoint = new URL(`${base}/v1/workspaces/${encodeURIComponent(opts.workspace)}/mcp`)
  let token = opts.token
  let refreshToken = opts.refreshToken

  /** Renews the access token once it expired (refresh tokens rotate: the new one is kept). */
  async function renew (): Promise<boolean> {
    if (refreshToken === undefined) return false
    const res = await fetch(`${base}/v1/auth/refresh`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken })
    })
    if (!res.ok) return false
    const body = await res.json() as { accessToken: string, refreshToken: string }
    token = body.accessToken
    refreshToken = body.refreshToken
    return true
  }

  // Every request carries the current token; a 401 with a refresh token renews it and retries once.
  const authorizedFetch = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const attempt = async (): Promise<Response> => {
      const headers = new Headers(init?.headers)
      headers.set('authorization', `Bearer ${token}`)
      if (opts.session !== undefined) headers.set('x-session-id', opts.session)
      return await fetch(input, { ...init, headers })
    }
    const res = await attempt()
    if (res.status === 401 && await renew()) return await attempt()
    return res
  }

  const remote = new StreamableHTTPClientTransport(endpoint, { fetch: authorizedFetch })
  const local = new StdioServerTransport()
  let closing = false
  const shutdown = async (code: number): Promise<void> => {
    if (closing) return
    closing = true
    await remote.terminateSession().catch(() => {})
    await remote.close().catch(() => {})
    process.exit(code)
  }

  remote.onmessage = message => {
    // The protocol version the server chose goes in a header on every later request.
    const result = (message as { result?: { protocolVersion?: unknown } }).result
    if (typeof result?.protocolVersion === 'string') {
      remote.setProtocolVersion(result.protocolVersion)
      if (remote.sessionId !== undefined) process.stderr.write(`workbench-mcp: session ${remote.sessionId} (its log: ${base}/v1/sessions/${remote.sessionId}/log.md)\n`)
    }
    void local.send(message)
  }
  remote.onerror = err => { process.stderr.write(`workbench-mcp: ${err.message}\n`) }
  local.onmessage = message => {
    remote.send(message).catch((err: unknown) => {
      // A request the server could not take (401, 404, a network failure) still gets its answer.
      const id = (message as { id?: string | number }).id
      const text = err instanceof Error ? err.message : String(err)
      process.stderr.write(`workbench-mcp: ${text}\n`)
      if (id !== undefined && 'method' in message) {
        void local.send({ jsonrpc: '2.0', id, error: { code: -32000, message: text } } satisfies JSONRPCMessage)
      }
    })
  }
  local.onclose = () => { void shutdown(0) }
  process.stdin.on('end', () => { void shutdown(0) })
  process.on('SIGTERM', () => { void shutdown(0) })
  process.on('SIGINT', () => { void shutdown(0) })

  await remote.start()
  await local.start()
}

main().catch((err: unknown) => {
  process.stderr.write(`workbench-mcp: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`)
  process.exit(2)
})
