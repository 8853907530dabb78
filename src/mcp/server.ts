import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { CallToolResult, Tool as ListedTool } from '@modelcontextprotocol/sdk/types.js'
import type { ValidateFunction } from 'ajv'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../core/config.js'
import { errors, schemaErrors, toAppError } from '../core/errors.js'
import { makeAjv } from '../core/validation.js'
import type { Db } from '../db/schema.js'
import { requirePermission, type Actor } from '../accounts/auth.js'
import type { SessionRegistry } from '../accounts/sessions.js'
import { requireRole } from '../accounts/workspaces.js'
import type { FileService } from '../files/service.js'
import type { SearchService } from '../search/service.js'
import type { SnapshotService } from '../snapshots/service.js'
import { McpArgs, McpToolOutput } from '../../schemas/mcp.js'
import { capText, errorText } from './format.js'
import { TOOLS, type Tool, type ToolContext } from './tools.js'

/**
 * The MCP server of a workspace (docs/api.md, "MCP"): the SDK's Streamable HTTP transport, one
 * stateless server per HTTP request (so any instance answers any request, as for REST), whose
 * tools call the file service. An MCP session is a session of the activity log: `initialize`
 * starts one (its id comes back in `Mcp-Session-Id`, which the client sends with every later
 * request), so its changes are logged, listed and reverted together.
 */

export interface McpDeps {
  files: FileService
  search: SearchService
  snapshots: SnapshotService
  db: Db
  sessions: SessionRegistry
  config: Config
}

/** One HTTP request to the endpoint, authenticated. */
export interface McpCall {
  actor: Actor
  workspaceId: string
  log: Pick<FastifyBaseLogger, 'error'>
  /** charges a tool call to the user's request budget (calls after the first of a JSON-RPC batch) */
  admit?: () => Promise<void>
}

/** The headers that name a session: X-Session-Id (as on every route) and the MCP session. */
export interface McpHeaders {
  xSessionId?: string | undefined
  mcpSessionId?: string | undefined
}

interface McpSession {
  /** the caller, with the session its calls are logged under */
  actor: Actor
  /** the session to answer in Mcp-Session-Id, when the request named or started one */
  sessionId?: string
}

const SERVER_INFO = { name: 'workbench', title: 'Workbench workspace', version: '1.0.0' }
const INSTRUCTIONS = 'The files of one Workbench workspace. Its root is /: /src/a.ts, src/a.ts and ./src/a.ts name the same file. ' +
  'Every change gets a revision, is seen live by the IDE, is logged in this MCP session and can be undone with revert_session. ' +
  'Errors start with a stable code (FILE_NOT_FOUND, PRECONDITION_FAILED, …). Long results are cut and end with a note saying how to get the rest.'

export type McpService = ReturnType<typeof createMcp>

/**
 * The SDK, loaded with the first MCP request rather than at start: it and the zod schemas it
 * brings are ≈ 13 MB of a process's memory, which an instance that never serves MCP need not hold.
 */
let sdk: Promise<typeof import('./sdk.js')> | undefined
const loadSdk = async (): Promise<typeof import('./sdk.js')> => await (sdk ??= import('./sdk.js'))

export function createMcp (deps: McpDeps) {
  const { files, search, snapshots, db, sessions, config } = deps
  const ajv = makeAjv()
  const tools = new Map<string, { tool: Tool, validate: ValidateFunction }>(
    TOOLS.map(tool => [tool.name, { tool, validate: ajv.compile(McpArgs[tool.name]) }]))
  // Plain JSON: the schemas without TypeBox's symbols.
  const outputSchema = JSON.parse(JSON.stringify(McpToolOutput)) as ListedTool['outputSchema']
  const listed: ListedTool[] = TOOLS.map(tool => ({
    name: tool.name,
    title: tool.annotations.title,
    description: tool.description,
    inputSchema: JSON.parse(JSON.stringify(McpArgs[tool.name])) as ListedTool['inputSchema'],
    outputSchema,
    annotations: tool.annotations
  }))
  const readOnly = listed.filter(t => t.annotations?.readOnlyHint === true)
  const exposeInternal = config.NODE_ENV === 'development'

  async function callTool (call: McpCall, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    const started = performance.now()
    const entry = tools.get(name)
    try {
      await call.admit?.()
      if (entry === undefined) throw errors.toolNotFound(name)
      // Defaults are filled in place: a copy, so the arguments as sent stay as they were.
      const input = structuredClone(args)
      if (!entry.validate(input)) {
        const first = entry.validate.errors?.[0]
        throw schemaErrors(`invalid arguments for ${name}: ${first?.instancePath === '' || first === undefined ? 'arguments' : first.instancePath} ${first?.message ?? 'invalid'}`,
          entry.validate.errors ?? [])
      }
      const ctx: ToolContext = { files, search, snapshots, actor: call.actor, workspaceId: call.workspaceId, maxResultBytes: config.MCP_MAX_RESULT_BYTES, exposeInternal }
      const result = await entry.tool.run(ctx, input)
      const capped = result.truncated === true
        ? { text: result.text, truncated: true }
        : capText(result.text, config.MCP_MAX_RESULT_BYTES, result.rest ?? (() => 'Ask for less (a narrower path or range).'))
      return {
        content: [{ type: 'text', text: capped.text }],
        structuredContent: {
          content: capped.text,
          ...(result.revision === undefined ? {} : { revision: result.revision }),
          ...(capped.truncated ? { truncated: true } : {})
        }
      }
    } catch (err) {
      const activity = entry?.tool.activity
      if (activity !== undefined) {
        // The service logs what fails inside it (and `rejected` skips those); this adds refusals before it.
        files.rejected(call.actor, {
          type: activity,
          workspaceId: call.workspaceId,
          op: entry?.tool.op ?? null,
          path: text(args.path) ?? text(args.source)
        }, err, performance.now() - started)
      }
      const e = toAppError(err)
      if (e.statusCode >= 500) call.log.error({ err, tool: name }, 'mcp tool failed')
      // A tool error, never a protocol error: the model reads it and can correct the call.
      return { content: [{ type: 'text', text: errorText(err, exposeInternal) }], isError: true }
    }
  }

  function serverFor ({ Server, ListToolsRequestSchema, CallToolRequestSchema }: typeof import('./sdk.js'), call: McpCall, canWrite: boolean): Server {
    const server = new Server(SERVER_INFO, { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS })
    // A viewer (or a token without file.write) is offered the reading tools only; a mutating tool
    // called anyway answers FORBIDDEN, as REST does.
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: canWrite ? listed : readOnly }))
    // The first tool call rides on the HTTP request's own charge; later ones in a batch are charged each.
    let calls = 0
    const charged: McpCall = { ...call, admit: async () => { if (calls++ > 0) await call.admit?.() } }
    server.setRequestHandler(CallToolRequestSchema, async request =>
      await callTool(charged, request.params.name, request.params.arguments ?? {}))
    return server
  }

  /** Membership first (WORKSPACE_NOT_FOUND, as REST), then file.read; true when the caller may also write. */
  async function access (actor: Actor, workspaceId: string): Promise<boolean> {
    const role = await requireRole(db, actor, workspaceId, 'viewer')
    requirePermission(actor, 'file.read')
    return role !== 'viewer' && actor.permissions.includes('file.write')
  }

  /**
   * The session a request's calls are logged under: `X-Session-Id` when sent (as on every
   * route), else the `Mcp-Session-Id` the client got from initialize (it must be the caller's),
   * else a new one for an `initialize`, else the token's `sid`.
   */
  async function session (actor: Actor, headers: McpHeaders, body: unknown): Promise<McpSession> {
    if (headers.xSessionId !== undefined) return { actor, sessionId: headers.xSessionId }
    if (headers.mcpSessionId !== undefined) {
      await sessions.claim(actor.userId, headers.mcpSessionId)
      return { actor: { ...actor, sessionId: headers.mcpSessionId }, sessionId: headers.mcpSessionId }
    }
    if (!isInitialize(body)) return { actor }
    const sessionId = await sessions.open(actor.userId)
    return { actor: { ...actor, sessionId }, sessionId }
  }

  return {
    access,

    /**
     * Answers one HTTP request of the Streamable HTTP transport (a JSON response, never a
     * stream): access first (as REST), then the session, then a server made for this request.
     */
    async handle (call: McpCall, headers: McpHeaders, request: Request, body: unknown): Promise<{ response: Response, sessionId?: string }> {
      const canWrite = await access(call.actor, call.workspaceId)
      const { actor, sessionId } = await session(call.actor, headers, body)
      const mcp = await loadSdk()
      const transport = new mcp.WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
      const server = serverFor(mcp, { ...call, actor }, canWrite)
      await server.connect(transport)
      try {
        const response = await transport.handleRequest(request, { parsedBody: body })
        return { response, ...(sessionId === undefined ? {} : { sessionId }) }
      } finally {
        void server.close()
      }
    }
  }
}

function isInitialize (body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body]
  return messages.some(m => typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'initialize')
}

const text = (value: unknown): string | null => typeof value === 'string' ? value : null
