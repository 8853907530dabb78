import { ApiError, WorkspaceMirror, type LiveStatus, type MirrorOptions, type MirrorUpdate, type User, type WorkbenchClient, type Workspace } from '../../client/src/index.js'
import { ActivityLog } from './activity.js'
import { describeError, field, h, replace } from './dom.js'
import { EditorPane } from './editor.js'
import { PresenceList, type PresenceState } from './presence.js'
import { searchPanel } from './search.js'
import { FileTree } from './tree.js'

export interface Ide { close: () => void }

const STATUS: Record<LiveStatus, string> = {
  idle: 'Offline',
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Offline'
}

/** A modal prompt for a path (or a yes/no when `label` is null): resolves to the value, or null when cancelled. */
async function ask (title: string, label: string | null, value: string, confirm: string): Promise<string | null> {
  const input = label === null ? null : field(label, { name: 'value', required: true, value, spellcheck: 'false', autocomplete: 'off' })
  const dialog = h('dialog', { 'aria-labelledby': 'dialog-title' },
    h('form', { method: 'dialog' },
      h('h2', { id: 'dialog-title' }, title),
      input === null ? null : [input.label, input.input],
      h('div', { class: 'row' },
        h('button', { type: 'submit', value: 'ok' }, confirm),
        h('button', { type: 'button', onclick: () => { dialog.close('') } }, 'Cancel'))))
  document.body.append(dialog)
  dialog.showModal()
  input?.input.select()
  return await new Promise(resolve => {
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(dialog.returnValue === 'ok' ? (input?.input.value ?? '') : null)
    }, { once: true })
  })
}

/**
 * The IDE of one workspace: the file tree (a WorkspaceMirror, live), the editor, search, the
 * session's activity, and who else is here.
 */
export async function openIde (client: WorkbenchClient, main: HTMLElement, bar: HTMLElement, workspace: Workspace, me: User): Promise<Ide> {
  const workspaceId = workspace.id
  const readOnly = workspace.role === 'viewer'
  const status = h('span', { class: 'live', role: 'status', 'aria-live': 'polite', 'data-status': client.live.status }, STATUS[client.live.status])
  const unlistenStatus = client.live.onStatus(s => {
    status.textContent = STATUS[s]
    status.dataset.status = s
  })
  bar.append(h('span', { class: 'workspace-name' }, workspace.name), status)

  const activity = new ActivityLog(client)
  const notice = h('p', { role: 'alert', class: 'error' })
  const presence = new PresenceList(client.sessionId)
  // The mirror subscribes with these options again whenever it re-reads the tree: they carry the
  // current presence state, so a new subscription announces it too.
  const subscribe: NonNullable<MirrorOptions['subscribe']> = {
    presence: { name: me.email, file: null } satisfies PresenceState,
    onPresence: members => { presence.render(members) },
    onError: err => { notice.textContent = `This workspace is gone or no longer shared with you (${err.code}).` }
  }
  const mirror = await WorkspaceMirror.open(client, workspaceId, {
    onError: err => { console.warn('mirror', err) },
    subscribe
  })
  const announce = (file: string | null): void => {
    const state: PresenceState = { name: me.email, file }
    subscribe.presence = { ...state }
    mirror.subscription?.presence.set({ ...state })
  }
  let editor: EditorPane | null = null
  const tree = new FileTree(mirror, {
    open: path => { void editor?.open(path) },
    select: () => {}
  })
  editor = new EditorPane({
    client,
    workspaceId,
    mirror,
    readOnly,
    opened: path => {
      tree.setOpen(path)
      announce(path)
    },
    saved: () => { activity.schedule() }
  })
  const pane = editor

  const unlistenMirror = mirror.onChange((update: MirrorUpdate) => {
    tree.schedule()
    pane.remote(update)
    if (update.own === true) activity.schedule()
  })

  // What the file actions act on: the selected entry, or its directory.
  const selectedDir = (): string => {
    const sel = tree.selected === null ? undefined : mirror.entries.get(tree.selected)
    if (sel === undefined) return '/'
    return sel.kind === 'directory' ? sel.path + '/' : sel.path.slice(0, sel.path.lastIndexOf('/') + 1)
  }
  const act = async (what: string, run: () => Promise<unknown>): Promise<void> => {
    notice.textContent = ''
    try {
      await run()
    } catch (err) {
      notice.textContent = `${what} failed: ${err instanceof ApiError ? `${err.code}: ${err.message}` : describeError(err)}`
    } finally {
      activity.schedule()
    }
  }
  const newFile = async (): Promise<void> => {
    const path = await ask('New file', 'Path of the new file', selectedDir(), 'Create')
    if (path === null || path === '') return
    await act('Creating the file', async () => {
      const { file } = await client.files.write(workspaceId, path, { content: '' }, { ifNoneMatch: '*' })
      await pane.open(file.path)
    })
  }
  const newFolder = async (): Promise<void> => {
    const path = await ask('New folder', 'Path of the new folder', selectedDir(), 'Create')
    if (path === null || path === '') return
    await act('Creating the folder', async () => await client.operations.apply(workspaceId, { type: 'mkdir', path }))
  }
  const move = async (): Promise<void> => {
    const from = tree.selected
    if (from === null) {
      notice.textContent = 'Select a file or folder to move first.'
      return
    }
    const to = await ask(`Move or rename ${from}`, 'New path', from, 'Move')
    if (to === null || to === '' || to === from) return
    await act('Moving', async () => await client.operations.apply(workspaceId, { type: 'move', path: from, newPath: to }))
  }
  const remove = async (): Promise<void> => {
    const path = tree.selected
    if (path === null) {
      notice.textContent = 'Select a file or folder to delete first.'
      return
    }
    const entry = mirror.entries.get(path)
    if (await ask(`Delete ${path}${entry?.kind === 'directory' ? ' and everything in it' : ''}?`, null, '', 'Delete') === null) return
    await act('Deleting', async () => await client.files.delete(workspaceId, path))
  }
  tree.el.addEventListener('keydown', event => {
    if (event.key === 'F2') void move()
    else if (event.key === 'Delete') void remove()
  })

  const tools = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'File actions' },
    h('button', { type: 'button', onclick: () => { void newFile() }, disabled: readOnly }, 'New file'),
    h('button', { type: 'button', onclick: () => { void newFolder() }, disabled: readOnly }, 'New folder'),
    h('button', { type: 'button', onclick: () => { void move() }, disabled: readOnly, 'aria-keyshortcuts': 'F2' }, 'Move'),
    h('button', { type: 'button', onclick: () => { void remove() }, disabled: readOnly, 'aria-keyshortcuts': 'Delete' }, 'Delete'))
  const files = h('section', { class: 'panel files', 'aria-labelledby': 'files-title' }, h('h2', { id: 'files-title' }, 'Files'), tools, notice, tree.el)
  const search = searchPanel(client, workspaceId, (path, line, column) => { void pane.open(path, { line, column }) })
  const side = h('aside', { class: 'side', 'aria-label': 'Workspace' }, files, search)
  const people = h('aside', { class: 'side right', 'aria-label': 'People and activity' }, presence.el, activity.el)
  replace(main, h('div', { class: 'ide' }, side, pane.el, people))
  tree.render()
  presence.render(mirror.subscription?.presence.members ?? new Map())
  void activity.refresh()

  return {
    close: () => {
      unlistenMirror()
      unlistenStatus()
      mirror.close()
      activity.close()
      pane.close()
    }
  }
}
