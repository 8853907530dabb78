import fp from 'fastify-plugin'
import { ActivityRecorder } from '../../src/mutations/activity.js'
import { ChatLogMirror } from '../../src/mutations/chat-log.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The activity log (src/mutations/activity.ts), mirrored to CHAT_LOG_DIR when set. */
    activity: ActivityRecorder
  }
}

export default fp(async function activity (fastify) {
  const dir = fastify.config.CHAT_LOG_DIR
  const mirror = dir === undefined
    ? undefined
    : new ChatLogMirror(dir, { onError: err => { fastify.log.warn({ err }, 'chat log append failed') } })
  const recorder = new ActivityRecorder(fastify.db, fastify.sessions, mirror)
  fastify.decorate('activity', recorder)
  // After the sockets and requests are done (onClose runs after them), wait for the entries still
  // being recorded (failures are recorded after the response), then flush what is queued.
  fastify.addHook('onClose', async () => {
    await recorder.drain()
    await mirror?.close()
  })
}, { name: 'activity', dependencies: ['database', 'auth'] })
