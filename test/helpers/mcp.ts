import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { Teardown } from './app.js'

/** MCP clients (the SDK's own) against a listening app's /v1/workspaces/{id}/mcp. */

export interface McpClient {
  client: Client
  transport: StreamableHTTPClientTransport
  /** calls a tool; the result's text and whether it is an error */
  call: (name: string, args?: Record<string, unknown>) => Promise<ToolAnswer>
}

export interface ToolAnswer {
  text: string
  isError: boolean
  structured: Record<string, unknown> | undefined
  raw: CallToolResult
}

export function answerOf (raw: CallToolResult): ToolAnswer {
  const first = raw.content[0]
  return {
    text: first?.type === 'text' ? first.text : '',
    isError: raw.isError === true,
    structured: raw.structuredContent,
    raw
  }
}

/** Connects (initialize included) with a Bearer token; closed when the test ends. */
export async function connectMcp (t: Teardown, base: string, token: string, workspaceId: string, headers: Record<string, string> = {}): Promise<McpClient> {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/v1/workspaces/${workspaceId}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } }
  })
  const client = new Client({ name: 'workbench-test', version: '1.0.0' })
  await client.connect(transport)
  t.teardown(async () => { await client.close() })
  return {
    client,
    transport,
    call: async (name, args = {}) => answerOf(await client.callTool({ name, arguments: args }) as CallToolResult)
  }
}
