/**
 * A socket's inbox: its messages are handled one at a time, in the order they came, and those
 * that come while one is in hand wait here, at most `maxMessages` of them and `maxBytes` of their
 * text. Without a bound, a handler that waits (a replay to a client that stopped reading, a slow
 * query) let a client pile up every message it sent, text and all.
 */
export interface InboxLimits {
  /** WS_MAX_QUEUED_MESSAGES */
  maxMessages: number
  /** WS_MAX_QUEUED_BYTES */
  maxBytes: number
}

export class Inbox {
  readonly #waiting: Array<{ raw: string, bytes: number }> = []
  #bytes = 0
  /** a message (or the task given to `run`) is in hand */
  #busy = false
  readonly #limits: InboxLimits
  readonly #handle: (raw: string) => Promise<void>
  readonly #onError: (err: unknown) => void

  /** `handle` is called for each message in turn; what it throws goes to `onError`, and the inbox goes on. */
  constructor (limits: InboxLimits, handle: (raw: string) => Promise<void>, onError: (err: unknown) => void) {
    this.#limits = limits
    this.#handle = handle
    this.#onError = onError
  }

  /**
   * Takes a message: handled at once when nothing is in hand, else it waits. False (and the
   * message not taken) when waiting would go past either bound.
   */
  push (raw: string): boolean {
    const bytes = Buffer.byteLength(raw)
    if (this.#busy && (this.#waiting.length >= this.#limits.maxMessages || this.#bytes + bytes > this.#limits.maxBytes)) return false
    this.#waiting.push({ raw, bytes })
    this.#bytes += bytes
    if (!this.#busy) void this.run()
    return true
  }

  /** Runs `first` (if any) ahead of every message, then handles the messages until none waits. */
  async run (first?: () => Promise<void>): Promise<void> {
    this.#busy = true
    // Without `first`, the message that started the run leaves the inbox at once: the one in
    // hand never counts against the bound, even when others came in the same read.
    if (first !== undefined) await this.#guarded(first)
    for (let next = this.#waiting.shift(); next !== undefined; next = this.#waiting.shift()) {
      this.#bytes -= next.bytes
      const { raw } = next
      await this.#guarded(async () => { await this.#handle(raw) })
    }
    this.#busy = false
  }

  /** Drops what waits (the socket is closing: it would never be handled). */
  clear (): void {
    this.#waiting.length = 0
    this.#bytes = 0
  }

  async #guarded (task: () => Promise<void>): Promise<void> {
    try {
      await task()
    } catch (err) {
      this.#onError(err)
    }
  }
}
