import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { listActivity, listSessions, markdownLog } from '../../src/mutations/activity.js'
import { responses } from '../../schemas/common.js'
import { ActivityPage, ActivityQuery, SessionList, SessionParams } from '../../schemas/sessions.js'

const MARKDOWN_LIMIT = 10_000

/** The caller's sessions and what each did: /v1/sessions. */
const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify
  const tags = ['sessions']
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.get('/sessions', {
    schema: { tags, summary: 'The caller\'s sessions, most recently active first', response: responses({ 200: SessionList }) }
  }, async function sessions (request) {
    return { items: await listSessions(db, request.actor) }
  })

  fastify.get('/sessions/:sid/activity', {
    schema: { tags, summary: 'A session\'s activity, oldest first, paginated', params: SessionParams, querystring: ActivityQuery, response: responses({ 200: ActivityPage }) }
  }, async function activity (request) {
    return await listActivity(db, request.actor, request.params.sid, request.query.limit, request.query.cursor)
  })

  fastify.get('/sessions/:sid/log.md', {
    schema: {
      tags,
      summary: 'A session\'s activity as Markdown: one `## <time> - <type>` section per entry',
      params: SessionParams,
      response: responses({ 200: Type.String({ description: 'text/markdown' }) })
    }
  }, async function logMarkdown (request, reply) {
    const { items } = await listActivity(db, request.actor, request.params.sid, MARKDOWN_LIMIT, undefined)
    return await reply.type('text/markdown; charset=utf-8').send(markdownLog(request.params.sid, items))
  })
}
export default sessionRoutes
