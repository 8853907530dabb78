import fp from 'fastify-plugin'
import { createSearchService, type SearchService } from '../../src/search/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Content search and the fuzzy finder, shared by REST routes, WebSocket RPC and MCP
     * (src/search/service.ts). Not `search`: Fastify has that name (the SEARCH method's route shorthand).
     */
    searchService: SearchService
  }
}

export default fp(async function search (fastify) {
  const { db, config } = fastify
  fastify.decorate('searchService', createSearchService({ db, config }))
}, { name: 'search', dependencies: ['database'] })
