import { basicSetup } from 'codemirror'
import { EditorView, keymap } from '@codemirror/view'
import { Compartment, EditorState, Text, type Extension } from '@codemirror/state'
import { javascript } from '@codemirror/lang-javascript'
import { markdown } from '@codemirror/lang-markdown'
import { ApiError, type MirrorUpdate, type WorkbenchClient, type WorkspaceMirror } from '../../client/src/index.js'
import { describeError, h, replace } from './dom.js'

export interface EditorHost {
  client: WorkbenchClient
  workspaceId: string
  mirror: WorkspaceMirror
  /** viewers cannot save */
  readOnly: boolean
  /** the open file changed (opened, moved, closed) */
  opened: (path: string | null) => void
  /** a save was tried (the activity log has a new entry) */
  saved: () => void
}

function language (path: string): Extension {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase()
  switch (ext) {
    case 'js': case 'mjs': case 'cjs': case 'json': return javascript()
    case 'jsx': return javascript({ jsx: true })
    case 'ts': case 'mts': case 'cts': return javascript({ typescript: true })
    case 'tsx': return javascript({ typescript: true, jsx: true })
    case 'md': case 'markdown': return markdown()
    default: return []
  }
}

const isAtOrBelow = (path: string, root: string): boolean => path === root || path.startsWith(root + '/')

/**
 * The editor (CodeMirror 6) of one file. It saves with `If-Match` (the etag the text was read or
 * last saved at), so a file changed underneath is never overwritten unasked: the 412 shows as a
 * conflict, the edits stay. A change from elsewhere reloads the file when it has no local edits,
 * and follows a move of the file.
 */
export class EditorPane {
  readonly el: HTMLElement
  path: string | null = null
  #etag: string | null = null
  #sha: string | null = null
  #loaded: Text = Text.empty
  #binary = false
  #gone = false
  #loading = 0
  readonly #view: EditorView
  readonly #title: HTMLElement
  readonly #status: HTMLElement
  readonly #alert: HTMLElement
  readonly #save: HTMLButtonElement
  readonly #language = new Compartment()
  readonly #label = new Compartment()

  constructor (readonly host: EditorHost) {
    this.#title = h('h2', { id: 'editor-title', class: 'path' }, 'No file open')
    this.#status = h('p', { role: 'status', class: 'status', 'aria-live': 'polite' })
    this.#alert = h('div', { role: 'alert', class: 'conflict', id: 'conflict' })
    this.#save = h('button', { type: 'button', disabled: true, onclick: () => { void this.save() }, 'aria-keyshortcuts': 'Control+S' }, 'Save')
    const parent = h('div', { class: 'cm-host' })
    this.el = h('section', { class: 'editor', 'aria-labelledby': 'editor-title' },
      h('div', { class: 'editor-head' }, this.#title, this.#status, this.#save),
      this.#alert,
      parent)
    this.#view = new EditorView({ parent, state: this.#state('', '') })
  }

  get dirty (): boolean { return this.path !== null && !this.#view.state.doc.eq(this.#loaded) }
  get view (): EditorView { return this.#view }
  /** the etag the editor's text was read or saved at */
  get etag (): string | null { return this.#etag }

  #state (content: string, path: string): EditorState {
    const readOnly = this.host.readOnly || this.#binary || this.path === null
    return EditorState.create({
      doc: content,
      extensions: [
        keymap.of([{ key: 'Mod-s', preventDefault: true, run: () => { void this.save(); return true } }]),
        basicSetup,
        this.#language.of(language(path)),
        EditorState.readOnly.of(readOnly),
        content.includes('\r\n') ? EditorState.lineSeparator.of('\r\n') : [],
        this.#label.of(this.#labelFor(path)),
        EditorView.updateListener.of(update => { if (update.docChanged) this.#showState() })
      ]
    })
  }

  #labelFor (path: string): Extension {
    return EditorView.contentAttributes.of({ 'aria-label': path === '' ? 'Editor' : `Content of ${path}` })
  }

  #showState (): void {
    this.#title.textContent = this.path === null ? 'No file open' : `${this.dirty ? '● ' : ''}${this.path}`
    this.#title.dataset.dirty = String(this.dirty)
    this.#save.disabled = this.path === null || this.host.readOnly || this.#binary
  }

  #say (text: string): void { this.#status.textContent = text }

  #clearAlert (): void { replace(this.#alert) }

  /** Opens a file (asks first when the open one has unsaved edits); `line`/`column` place the cursor. */
  async open (path: string, at?: { line: number, column: number }): Promise<void> {
    if (path !== this.path && this.dirty && !window.confirm(`Discard your unsaved changes to ${this.path ?? ''}?`)) return
    const loading = ++this.#loading
    this.#say(`Opening ${path}…`)
    try {
      const entry = await this.host.client.files.read(this.host.workspaceId, path)
      if (loading !== this.#loading) return
      if (entry.kind !== 'file') return
      this.path = path
      this.#etag = entry.etag
      this.#sha = entry.sha256
      this.#gone = false
      this.#binary = entry.encoding === 'base64'
      const content = this.#binary ? `(binary file, ${entry.size ?? 0} bytes: not shown)` : entry.content ?? ''
      this.#view.setState(this.#state(content, path))
      this.#loaded = this.#view.state.doc
      this.#clearAlert()
      this.#showState()
      this.#say(this.#binary ? 'Binary file: read only' : this.host.readOnly ? 'Read only (viewer)' : `Version ${entry.version}`)
      if (at !== undefined) this.#goto(at.line, at.column)
      this.host.opened(path)
    } catch (err) {
      if (loading === this.#loading) this.#say(`Could not open ${path}: ${describeError(err)}`)
    }
  }

  #goto (line: number, column: number): void {
    const doc = this.#view.state.doc
    const l = doc.line(Math.min(Math.max(1, line), doc.lines))
    const pos = Math.min(l.from + Math.max(0, column - 1), l.to)
    this.#view.dispatch({ selection: { anchor: pos }, scrollIntoView: true })
    this.#view.focus()
  }

  /** Saves with If-Match: `overwrite` is the server's current etag, when the user chose to overwrite it. */
  async save (overwrite?: string): Promise<void> {
    const path = this.path
    if (path === null || this.host.readOnly || this.#binary) return
    const doc = this.#view.state.doc
    const content = doc.toString()
    const ifMatch = overwrite ?? this.#etag ?? undefined
    this.#say('Saving…')
    try {
      // No etag (the file was deleted meanwhile): create it only if nobody else did.
      const { file } = await this.host.client.files.write(this.host.workspaceId, path, { content }, ifMatch === undefined ? { ifNoneMatch: '*' } : { ifMatch })
      if (this.path !== path) return
      this.#etag = file.etag
      this.#sha = file.sha256
      this.#gone = false
      this.#loaded = doc
      this.#clearAlert()
      this.#showState()
      this.#say(`Saved (version ${file.version})`)
    } catch (err) {
      if (this.path !== path) return
      if (err instanceof ApiError && err.code === 'PRECONDITION_FAILED') this.#conflict(err)
      else {
        this.#say('Not saved')
        replace(this.#alert, h('p', {}, `Could not save ${path}: ${describeError(err)}`))
      }
    } finally {
      this.host.saved()
    }
  }

  #conflict (err: ApiError): void {
    const current = err.details?.current as { etag?: string, version?: number } | undefined
    this.#say('Not saved: conflict')
    replace(this.#alert,
      h('p', {}, h('strong', {}, 'Conflict: '),
        `${this.path ?? ''} was changed on the server since you opened it${current?.version === undefined ? '' : ` (it is now version ${current.version})`}. ` +
        'Your edits were not saved; they are still here.'),
      h('div', { class: 'row' },
        h('button', { type: 'button', onclick: () => { void this.reload(true) } }, 'Discard mine and load theirs'),
        current?.etag === undefined ? null : h('button', { type: 'button', onclick: () => { void this.save(current.etag) } }, 'Overwrite theirs')))
  }

  /** Reads the open file again and shows it (`discard`: even over local edits). */
  async reload (discard = false): Promise<void> {
    const path = this.path
    if (path === null) return
    const loading = ++this.#loading
    try {
      const entry = await this.host.client.files.read(this.host.workspaceId, path)
      if (loading !== this.#loading || this.path !== path) return
      if (this.dirty && !discard) {
        this.#say('Changed on the server; you have unsaved edits (saving will show the conflict)')
        return
      }
      const binary = entry.encoding === 'base64'
      if (binary !== this.#binary) {
        this.#binary = binary
        await this.open(path)
        return
      }
      const content = entry.content ?? ''
      const head = Math.min(this.#view.state.selection.main.head, content.length)
      this.#view.dispatch({ changes: { from: 0, to: this.#view.state.doc.length, insert: content }, selection: { anchor: head } })
      this.#loaded = this.#view.state.doc
      this.#etag = entry.etag
      this.#sha = entry.sha256
      this.#clearAlert()
      this.#showState()
      this.#say(`Updated from the server (version ${entry.version})`)
    } catch (err) {
      if (err instanceof ApiError && err.code === 'FILE_NOT_FOUND') return
      this.#say(`Could not reload: ${describeError(err)}`)
    }
  }

  /** The mirror moved on: follow a move of the open file, reload it when it changed and has no local edits. */
  remote (update: MirrorUpdate): void {
    if (this.path === null) return
    const change = update.change
    if (change?.op === 'move' && change.newPath !== null && isAtOrBelow(this.path, change.path)) {
      this.path = change.newPath + this.path.slice(change.path.length)
      this.#view.dispatch({ effects: this.#label.reconfigure(this.#labelFor(this.path)) })
      this.#showState()
      this.host.opened(this.path)
    }
    // The echo of this editor's own save: the save's answer sets the etag.
    if (update.type === 'change' && update.own === true && change?.path === this.path && change.op === 'update') return
    const entry = this.host.mirror.entries.get(this.path)
    if (entry === undefined || entry.kind !== 'file') {
      if (!this.#gone) {
        this.#gone = true
        this.#etag = null
        this.#say('Deleted on the server: saving creates it again')
      }
      return
    }
    this.#gone = false
    if (entry.etag === this.#etag) return
    // Moved or touched, same bytes: the text is still current.
    if (entry.sha256 !== null && entry.sha256 === this.#sha) {
      this.#etag = entry.etag
      return
    }
    if (this.dirty) this.#say('Changed on the server; you have unsaved edits (saving will show the conflict)')
    else void this.reload()
  }

  close (): void {
    this.#view.destroy()
  }
}
