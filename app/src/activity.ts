import { ApiError, type ActivityRecord, type WorkbenchClient } from '../../client/src/index.js'
import { describeError, h, replace, time } from './dom.js'

const KEEP = 200

/**
 * The activity log of this tab's session (`GET /v1/sessions/{sid}/activity`), newest first. It
 * reads on from the last page it saw whenever asked (after this tab's writes), so each refresh
 * costs one page or two.
 */
export class ActivityLog {
  readonly el: HTMLElement
  readonly #list: HTMLOListElement
  readonly #status: HTMLElement
  #items: ActivityRecord[] = []
  /** the cursor of the last page read (it is read again: entries may have joined it) */
  #cursor: string | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #running: Promise<void> | null = null
  #again = false

  constructor (readonly client: WorkbenchClient) {
    this.#list = h('ol', { class: 'activity', 'aria-label': 'Activity of this session' })
    this.#status = h('p', { class: 'status', role: 'status' })
    this.el = h('section', { class: 'panel', 'aria-labelledby': 'activity-title' },
      h('div', { class: 'row' }, h('h2', { id: 'activity-title' }, 'Activity'), h('button', { type: 'button', onclick: () => { void this.refresh() } }, 'Refresh')),
      this.#status, this.#list)
  }

  /** Refreshes soon (a burst of writes is one read). */
  schedule (): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { void this.refresh() }, 300)
  }

  async refresh (): Promise<void> {
    if (this.#running !== null) {
      this.#again = true
      return await this.#running
    }
    this.#running = this.#read()
    try {
      await this.#running
    } finally {
      this.#running = null
    }
    if (this.#again) {
      this.#again = false
      await this.refresh()
    }
  }

  async #read (): Promise<void> {
    const sid = this.client.sessionId
    if (sid === undefined) return
    try {
      const last = this.#items.at(-1)?.id ?? 0
      const fresh: ActivityRecord[] = []
      let cursor = this.#cursor
      for (;;) {
        const page = await this.client.sessions.activity(sid, { limit: 200, ...(cursor === undefined ? {} : { cursor }) })
        for (const item of page.items) if (item.id > last) fresh.push(item)
        if (page.nextCursor === null) break
        cursor = page.nextCursor
        this.#cursor = cursor
      }
      this.#items = [...this.#items, ...fresh].slice(-KEEP)
      this.#status.textContent = ''
      if (fresh.length > 0 || this.#list.childElementCount === 0) this.#render()
    } catch (err) {
      if (err instanceof ApiError && err.code === 'NOT_FOUND') this.#status.textContent = 'Nothing yet.'
      else this.#status.textContent = `Could not read the activity: ${describeError(err)}`
    }
  }

  #render (): void {
    replace(this.#list, [...this.#items].reverse().map(item => h('li', { class: item.status >= 400 ? 'error' : undefined, 'data-id': item.id },
      h('time', { datetime: item.at }, time(item.at)), ' ',
      h('span', { class: 'type' }, item.op === null ? item.type : `${item.type} ${item.op}`),
      item.path === null ? null : [' ', h('code', {}, item.path)],
      item.newPath === null ? null : [' → ', h('code', {}, item.newPath)],
      ' ', h('span', { class: 'code' }, item.code ?? String(item.status)))))
  }

  close (): void { clearTimeout(this.#timer) }
}
