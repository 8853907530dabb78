/**
 * Every REST route the SDK calls, as the OpenAPI document (`/docs/json`) spells it. Each SDK
 * method goes through this table, and test/client/contract.test.ts checks it against the
 * server's document both ways, so a route added, removed or renamed on the server fails a test.
 */
export const ROUTES = {
  health: ['GET', '/health'],
  ready: ['GET', '/ready'],
  'auth.register': ['POST', '/v1/auth/register'],
  'auth.login': ['POST', '/v1/auth/login'],
  'auth.refresh': ['POST', '/v1/auth/refresh'],
  'auth.logout': ['POST', '/v1/auth/logout'],
  me: ['GET', '/v1/me'],
  'workspaces.create': ['POST', '/v1/workspaces'],
  'workspaces.list': ['GET', '/v1/workspaces'],
  'workspaces.get': ['GET', '/v1/workspaces/{id}'],
  'workspaces.delete': ['DELETE', '/v1/workspaces/{id}'],
  'members.list': ['GET', '/v1/workspaces/{id}/members'],
  'members.put': ['PUT', '/v1/workspaces/{id}/members'],
  'members.remove': ['DELETE', '/v1/workspaces/{id}/members/{userId}'],
  'workspaces.fork': ['POST', '/v1/workspaces/{id}/fork'],
  'snapshots.list': ['GET', '/v1/workspaces/{id}/snapshots'],
  'snapshots.create': ['POST', '/v1/workspaces/{id}/snapshots'],
  'snapshots.get': ['GET', '/v1/workspaces/{id}/snapshots/{name}'],
  'snapshots.delete': ['DELETE', '/v1/workspaces/{id}/snapshots/{name}'],
  'files.read': ['GET', '/v1/workspaces/{id}/files/{path}'],
  'files.write': ['PUT', '/v1/workspaces/{id}/files/{path}'],
  'files.delete': ['DELETE', '/v1/workspaces/{id}/files/{path}'],
  'files.tree': ['GET', '/v1/workspaces/{id}/tree'],
  'files.changes': ['GET', '/v1/workspaces/{id}/changes'],
  'files.history': ['GET', '/v1/workspaces/{id}/history/{path}'],
  'operations.apply': ['POST', '/v1/workspaces/{id}/operations'],
  'operations.batch': ['POST', '/v1/workspaces/{id}/operations/batch'],
  revert: ['POST', '/v1/workspaces/{id}/revert'],
  search: ['POST', '/v1/workspaces/{id}/search'],
  find: ['GET', '/v1/workspaces/{id}/find'],
  'sessions.list': ['GET', '/v1/sessions'],
  'sessions.activity': ['GET', '/v1/sessions/{sid}/activity'],
  'sessions.log': ['GET', '/v1/sessions/{sid}/log.md'],
  stats: ['GET', '/v1/stats']
} as const satisfies Record<string, readonly [HttpMethod, string]>

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE'
export type RouteName = keyof typeof ROUTES

/**
 * Routes of the document the SDK does not call as such: `/files` and `/history` without a path
 * are the root's spelling of `/files/{path}` and `/history/{path}` (the SDK sends the root as them);
 * `/archive` moves archive bytes in and out, which a browser or curl sends and saves as files;
 * `/metrics` is Prometheus text for scrapers; `/v1/ws` is the live socket (`client.live`); `/mcp` is
 * for MCP clients.
 */
export const NOT_METHODS: ReadonlyArray<readonly [string, string, string]> = [
  ['GET', '/v1/workspaces/{id}/files', 'files.read of "/"'],
  ['PUT', '/v1/workspaces/{id}/files', 'files.write of "/" (always 400 INVALID_PATH)'],
  ['DELETE', '/v1/workspaces/{id}/files', 'files.delete of "/" (always 400 INVALID_PATH)'],
  ['GET', '/v1/workspaces/{id}/history', 'files.history of "/"'],
  ['GET', '/v1/workspaces/{id}/archive', 'an archive download (tar or zip bytes, streamed): fetch it as a file (docs/api.md, "Archives")'],
  ['POST', '/v1/workspaces/{id}/archive', 'an archive upload (tar, tar.gz or zip bytes as the body): send the file as it is (docs/api.md, "Archives")'],
  ['GET', '/metrics', 'Prometheus text, for scrapers'],
  ['GET', '/v1/ws', 'the live socket: client.live'],
  ['POST', '/v1/workspaces/{id}/mcp', 'the MCP endpoint, for MCP clients (README, "Use it from an agent")'],
  ['GET', '/v1/workspaces/{id}/mcp', 'the MCP endpoint (always 405)'],
  ['DELETE', '/v1/workspaces/{id}/mcp', 'the MCP endpoint (always 405)']
]

/** `/v1/workspaces/{id}/files/{path}` with its parameters filled in (`path`: an absolute file path, encoded per segment). */
export function routeUrl (name: RouteName, params: Record<string, string> = {}): string {
  const [, full] = ROUTES[name]
  // The root is `/files` (and `/history`), without a trailing slash.
  const template = params.path === '/' ? full.replace('/{path}', '') : full
  return template.replace(/\{([^}]+)\}/g, (_, key: string) => {
    const value = params[key]
    if (value === undefined) throw new TypeError(`${name}: missing parameter ${key}`)
    return key === 'path' ? encodeFilePath(value) : encodeURIComponent(value)
  })
}

/** `/src/café.ts` → `src/caf%C3%A9.ts` (the root `/` → ``); a path must be absolute. */
export function encodeFilePath (path: string): string {
  if (!path.startsWith('/')) throw new TypeError(`a workspace path is absolute: ${JSON.stringify(path)}`)
  return path.slice(1).split('/').map(encodeURIComponent).join('/')
}
