import fp from 'fastify-plugin'
import { createMcp, type McpService } from '../../src/mcp/server.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The MCP server of each workspace, a third door to the file service (src/mcp/server.ts). */
    mcp: McpService
  }
}

export default fp(async function mcp (fastify) {
  const { files, searchService: search, snapshots, db, sessions, config } = fastify
  fastify.decorate('mcp', createMcp({ files, search, snapshots, db, sessions, config }))
}, { name: 'mcp', dependencies: ['service', 'search', 'snapshots', 'database', 'auth', 'config'] })
