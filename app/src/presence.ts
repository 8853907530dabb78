import type { PresenceMember } from '../../client/src/index.js'
import { h, replace } from './dom.js'

/** What this page announces: who the user is and which file is open. */
export interface PresenceState { name: string, file: string | null }

const text = (value: unknown, max = 200): string | null => typeof value === 'string' && value !== '' ? value.slice(0, max) : null

/** Who else is here (the workspace subscription's presence) and which file each has open. */
export class PresenceList {
  readonly el: HTMLElement
  readonly #list: HTMLUListElement
  readonly #title: HTMLElement

  constructor (readonly ownSession: string | undefined) {
    this.#title = h('h2', { id: 'presence-title' }, 'Here now')
    this.#list = h('ul', { class: 'presence', 'aria-labelledby': 'presence-title' })
    this.el = h('section', { class: 'panel', 'aria-live': 'polite', 'aria-relevant': 'additions removals' }, this.#title, this.#list)
  }

  render (members: ReadonlyMap<string, PresenceMember>): void {
    const rows = [...members.values()]
      .map(m => ({ m, name: text(m.state.name) ?? `user ${m.userId.slice(0, 8)}`, file: text(m.state.file, 4096), own: m.sessionId === this.ownSession }))
      .sort((a, b) => Number(b.own) - Number(a.own) || a.name.localeCompare(b.name))
    this.#title.textContent = `Here now (${rows.length})`
    replace(this.#list, rows.map(({ m, name, file, own }) => h('li', { 'data-session': m.sessionId, 'data-user': m.userId, 'data-file': file ?? '' },
      h('span', { class: 'name' }, own ? `${name} (you)` : name), ' ',
      h('span', { class: 'file' }, file ?? 'no file open'))))
  }
}
