import { appendFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isUuid } from '../core/validation.js'

/**
 * CHAT_LOG_DIR: each session's activity appended as Markdown to `<dir>/session<sid>.md`, off the
 * request path. Appends are queued (bounded: past the bound they are dropped and counted),
 * written in batches, and flushed on shutdown. The session id must be a UUID before it becomes
 * part of a file name.
 */
export class ChatLogMirror {
  readonly stats = { written: 0, dropped: 0, rejected: 0 }
  readonly #dir: string
  readonly #maxQueue: number
  readonly #intervalMs: number
  readonly #onError: (err: unknown) => void
  #queue: Array<{ sessionId: string, text: string }> = []
  #timer: NodeJS.Timeout | undefined
  #writing: Promise<void> = Promise.resolve()
  #ready: Promise<unknown> | undefined

  constructor (dir: string, options: { maxQueue?: number, intervalMs?: number, onError?: (err: unknown) => void } = {}) {
    this.#dir = dir
    this.#maxQueue = options.maxQueue ?? 10_000
    this.#intervalMs = options.intervalMs ?? 200
    this.#onError = options.onError ?? (() => {})
  }

  /** Queues a section for a session's file; never blocks, never throws. */
  append (sessionId: string, text: string): boolean {
    if (!isUuid(sessionId)) {
      this.stats.rejected++
      return false
    }
    if (this.#queue.length >= this.#maxQueue) {
      this.stats.dropped++
      return false
    }
    this.#queue.push({ sessionId: sessionId.toLowerCase(), text })
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.#timer = undefined; void this.flush() }, this.#intervalMs)
      this.#timer.unref()
    }
    return true
  }

  /** Writes everything queued so far, one append per session file. */
  async flush (): Promise<void> {
    const batch = this.#queue
    this.#queue = []
    this.#writing = this.#writing.then(async () => {
      if (batch.length === 0) return
      this.#ready ??= mkdir(this.#dir, { recursive: true })
      await this.#ready
      const bySession = new Map<string, string[]>()
      for (const { sessionId, text } of batch) bySession.set(sessionId, [...(bySession.get(sessionId) ?? []), text])
      for (const [sessionId, texts] of bySession) {
        try {
          await appendFile(join(this.#dir, `session${sessionId}.md`), texts.join(''))
          this.stats.written += texts.length
        } catch (err) {
          this.stats.dropped += texts.length
          this.#onError(err)
        }
      }
    })
    await this.#writing
  }

  async close (): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.flush()
  }
}
