import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { listActivity, listSessions, markdownLog } from '../../src/mutations/activity.js'
import { described, responses } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'
import { ActivityPage, ActivityQuery, SessionList, SessionParams } from '../../schemas/sessions.js'

const MARKDOWN_LIMIT = 10_000

/** The caller's sessions and what each did: /v1/sessions. */
const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify
  const tags = ['sessions']
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.get('/sessions', {
    schema: { tags, summary: 'The caller\'s sessions, most recently active first', response: responses({ 200: described(SessionList, { description: 'The caller\'s sessions' }) }, ...RouteErrors.authenticated) }
  }, async function sessions (request) {
    return { items: await listSessions(db, request.actor) }
  })

  fastify.get('/sessions/:sid/activity', {
    schema: { tags, summary: 'A session\'s activity, oldest first, paginated', params: SessionParams, querystring: ActivityQuery, response: responses({ 200: described(ActivityPage, { description: 'A page of entries' }) }, ...RouteErrors.session) }
  }, async function activity (request) {
    return await listActivity(db, request.actor, request.params.sid, request.query.limit, request.query.cursor)
  })

  fastify.get('/sessions/:sid/log.md', {
    schema: {
      tags,
      summary: 'A session\'s activity as Markdown: one `## <time> - <type>` section per entry',
      params: SessionParams,
      response: responses({
        200: { description: 'The log as Markdown', content: { 'text/markdown': { schema: Type.String({ description: 'one section per entry, oldest first (at most 10 000 entries)' }) } } }
      }, ...RouteErrors.session)
    }
  }, async function logMarkdown (request, reply) {
    const { items } = await listActivity(db, request.actor, request.params.sid, MARKDOWN_LIMIT, undefined)
    return await reply.type('text/markdown; charset=utf-8').send(markdownLog(request.params.sid, items))
  })
}
export default sessionRoutes
