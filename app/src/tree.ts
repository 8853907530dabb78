import { comparePaths, type FileMeta, type WorkspaceMirror } from '../../client/src/index.js'
import { h } from './dom.js'

export interface TreeHost {
  /** a file was chosen (click, Enter) */
  open: (path: string) => void
  /** the selection moved */
  select: (path: string | null) => void
}

const parentOf = (path: string): string => path.slice(0, path.lastIndexOf('/')) || '/'

interface Row { entry: FileMeta, level: number, size: number, index: number }

/**
 * The workspace's files as an ARIA tree (a flat list of treeitems with levels: WAI-ARIA's
 * keyboard model: arrows, Home/End, Enter/Space), drawn from the mirror and redrawn when it
 * changes (coalesced). Directories come first, then files, each by name.
 */
export class FileTree {
  readonly el: HTMLUListElement
  selected: string | null = null
  #open: string | null = null
  readonly #collapsed = new Set<string>()
  #scheduled = false

  constructor (readonly mirror: WorkspaceMirror, readonly host: TreeHost) {
    this.el = h('ul', { role: 'tree', 'aria-label': 'Files', class: 'tree' })
    this.el.addEventListener('click', event => {
      const item = (event.target as Element).closest<HTMLElement>('[role="treeitem"]')
      if (item !== null) this.#activate(item.dataset.path ?? '', true)
    })
    this.el.addEventListener('keydown', event => { this.#key(event) })
  }

  /** Marks the file open in the editor. */
  setOpen (path: string | null): void {
    this.#open = path
    if (path !== null) this.selected = path
    this.schedule()
  }

  /** Redraws soon (many changes in a row are drawn once). */
  schedule (): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setTimeout(() => {
      this.#scheduled = false
      this.render()
    }, 0)
  }

  #rows (): Row[] {
    const children = new Map<string, FileMeta[]>()
    for (const entry of this.mirror.entries.values()) {
      const parent = parentOf(entry.path)
      const list = children.get(parent)
      if (list === undefined) children.set(parent, [entry])
      else list.push(entry)
    }
    const rows: Row[] = []
    const walk = (dir: string, level: number): void => {
      const list = children.get(dir)
      if (list === undefined) return
      list.sort((a, b) => a.kind === b.kind ? comparePaths(a.name, b.name) : a.kind === 'directory' ? -1 : 1)
      list.forEach((entry, index) => {
        rows.push({ entry, level, size: list.length, index: index + 1 })
        if (entry.kind === 'directory' && !this.#collapsed.has(entry.path)) walk(entry.path, level + 1)
      })
    }
    walk('/', 1)
    return rows
  }

  render (): void {
    const focused = this.el.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.path : undefined
    if (this.selected !== null && !this.mirror.entries.has(this.selected)) this.selected = null
    const rows = this.#rows()
    const tabbable = this.selected ?? rows[0]?.entry.path
    const items = rows.map(({ entry, level, size, index }) => {
      const dir = entry.kind === 'directory'
      const li = h('li', {
        role: 'treeitem',
        'aria-level': level,
        'aria-setsize': size,
        'aria-posinset': index,
        'aria-expanded': dir ? String(!this.#collapsed.has(entry.path)) : undefined,
        'aria-selected': String(entry.path === this.selected),
        'aria-current': entry.path === this.#open ? 'page' : undefined,
        tabindex: entry.path === tabbable ? 0 : -1,
        'data-path': entry.path,
        'data-kind': entry.kind,
        title: entry.path
      }, h('span', { class: dir ? 'icon dir' : 'icon file', 'aria-hidden': 'true' }), entry.name)
      li.style.setProperty('--level', String(level - 1))
      return li
    })
    this.el.replaceChildren(...items)
    this.el.dataset.revision = String(this.mirror.revision)
    this.el.dataset.count = String(this.mirror.entries.size)
    if (focused !== undefined) this.#item(focused)?.focus()
  }

  #item (path: string): HTMLElement | null {
    return this.el.querySelector<HTMLElement>(`[role="treeitem"][data-path="${CSS.escape(path)}"]`)
  }

  #focus (path: string | undefined): void {
    if (path === undefined) return
    this.selected = path
    this.host.select(path)
    for (const item of this.el.querySelectorAll<HTMLElement>('[role="treeitem"]')) {
      const mine = item.dataset.path === path
      item.tabIndex = mine ? 0 : -1
      item.setAttribute('aria-selected', String(mine))
    }
    this.#item(path)?.focus()
  }

  /** Click, Enter or Space: a file opens, a directory opens or closes. */
  #activate (path: string, focus: boolean): void {
    const entry = this.mirror.entries.get(path)
    if (entry === undefined) return
    if (focus) this.#focus(path)
    if (entry.kind === 'directory') this.#toggle(path, !this.#collapsed.has(path))
    else this.host.open(path)
  }

  #toggle (path: string, collapse: boolean): void {
    if (collapse) this.#collapsed.add(path)
    else this.#collapsed.delete(path)
    this.render()
  }

  #key (event: KeyboardEvent): void {
    const current = (event.target as HTMLElement).dataset.path
    if (current === undefined) return
    const items = [...this.el.querySelectorAll<HTMLElement>('[role="treeitem"]')]
    const i = items.findIndex(item => item.dataset.path === current)
    const entry = this.mirror.entries.get(current)
    const dir = entry?.kind === 'directory'
    switch (event.key) {
      case 'ArrowDown': this.#focus(items[i + 1]?.dataset.path); break
      case 'ArrowUp': this.#focus(items[i - 1]?.dataset.path); break
      case 'Home': this.#focus(items[0]?.dataset.path); break
      case 'End': this.#focus(items.at(-1)?.dataset.path); break
      case 'ArrowRight':
        if (dir && this.#collapsed.has(current)) this.#toggle(current, false)
        else if (dir) this.#focus(items[i + 1]?.dataset.path)
        break
      case 'ArrowLeft':
        if (dir && !this.#collapsed.has(current)) this.#toggle(current, true)
        else if (parentOf(current) !== '/') this.#focus(parentOf(current))
        break
      case 'Enter':
      case ' ':
        this.#activate(current, false)
        break
      default: return
    }
    event.preventDefault()
  }
}
