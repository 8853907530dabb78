import './style.css'
import { ApiError, WorkbenchClient, type TokenSet, type User } from '../../client/src/index.js'
import { describeError, field, h, replace } from './dom.js'
import { openIde, type Ide } from './ide.js'

/**
 * The Workbench IDE page: sign in or register, the workspaces, and the IDE of one workspace
 * (`#/w/<id>`). Tokens are kept in localStorage and shared by the tabs of the browser (a
 * refresh in one is picked up by the others through the `storage` event).
 */

const STORAGE = 'workbench.tokens'
const root = document.getElementById('root') as HTMLElement

function loadTokens (): TokenSet | null {
  try {
    return JSON.parse(localStorage.getItem(STORAGE) ?? 'null') as TokenSet | null
  } catch {
    return null
  }
}

const client = new WorkbenchClient({
  baseUrl: location.origin,
  tokens: loadTokens(),
  onTokens: tokens => {
    if (tokens === null) localStorage.removeItem(STORAGE)
    else localStorage.setItem(STORAGE, JSON.stringify(tokens))
  }
})
window.addEventListener('storage', event => { if (event.key === STORAGE) client.setTokens(loadTokens()) })
client.onTokens(tokens => { if (tokens === null) void route() })

let ide: Ide | null = null
let me: User | null = null

function show (...content: Node[]): HTMLElement {
  const main = h('main', { id: 'main', tabindex: -1 }, ...content)
  replace(root, main)
  root.removeAttribute('aria-busy')
  return main
}

function topBar (): HTMLElement {
  return h('header', { class: 'bar' },
    h('a', { href: '#/', class: 'brand' }, 'Workbench'),
    h('span', { class: 'spacer' }),
    me === null ? null : h('span', { class: 'me' }, me.email),
    h('button', { type: 'button', onclick: () => { void signOut() } }, 'Sign out'))
}

async function signOut (): Promise<void> {
  me = null
  history.replaceState(null, '', location.pathname)
  try {
    await client.auth.logout() // forgets the tokens first: the page shows the sign-in form
  } catch {
    // the tokens are gone here either way
  }
}

function signIn (): void {
  const email = field('Email', { type: 'email', name: 'email', autocomplete: 'username', required: true })
  const password = field('Password', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, minlength: 8 })
  const error = h('p', { role: 'alert', class: 'error' })
  const submit = async (kind: 'login' | 'register'): Promise<void> => {
    error.textContent = ''
    const credentials = { email: email.input.value, password: password.input.value }
    try {
      const result = kind === 'login' ? await client.auth.login(credentials) : await client.auth.register(credentials)
      me = result.user
      await route()
    } catch (err) {
      error.textContent = err instanceof ApiError && err.code === 'INVALID_CREDENTIALS'
        ? 'Wrong email or password.'
        : err instanceof ApiError && err.code === 'EMAIL_TAKEN' ? 'That email is already registered: sign in.' : describeError(err)
    }
  }
  const form = h('form', { class: 'card', 'aria-labelledby': 'signin-title', onsubmit: (e: SubmitEvent) => { e.preventDefault(); void submit('login') } },
    h('h1', { id: 'signin-title' }, 'Sign in to Workbench'),
    email.label, email.input, password.label, password.input,
    h('div', { class: 'row' },
      h('button', { type: 'submit' }, 'Sign in'),
      h('button', { type: 'button', onclick: () => { if (form.reportValidity()) void submit('register') } }, 'Register')),
    error)
  show(form)
  email.input.focus()
}

async function workspaces (): Promise<void> {
  const list = h('ul', { class: 'workspaces', 'aria-labelledby': 'ws-title' })
  const name = field('New workspace name', { name: 'name', required: true, maxlength: 200, autocomplete: 'off' })
  const error = h('p', { role: 'alert', class: 'error' })
  const create = async (): Promise<void> => {
    try {
      const ws = await client.workspaces.create(name.input.value)
      location.hash = `#/w/${ws.id}`
    } catch (err) {
      error.textContent = `Could not create it: ${describeError(err)}`
    }
  }
  const main = show(topBar(), h('section', { class: 'card' },
    h('h1', { id: 'ws-title' }, 'Workspaces'), list,
    h('form', { onsubmit: (e: SubmitEvent) => { e.preventDefault(); void create() } },
      name.label, h('div', { class: 'row' }, name.input, h('button', { type: 'submit' }, 'Create'))),
    error))
  try {
    const items = await client.workspaces.list()
    replace(list, items.length === 0
      ? h('li', {}, 'No workspaces yet: create one.')
      : items.map(ws => h('li', {}, h('a', { href: `#/w/${ws.id}` }, ws.name), ' ', h('span', { class: 'role' }, ws.role ?? ''))))
  } catch (err) {
    error.textContent = describeError(err)
  }
  main.querySelector<HTMLElement>('h1')?.focus()
}

async function workspace (id: string): Promise<void> {
  const bar = topBar()
  const main = show(bar, h('p', { class: 'loading' }, 'Opening the workspace…'))
  try {
    const ws = await client.workspaces.get(id)
    document.title = `${ws.name} · Workbench`
    const body = h('div', { class: 'body' })
    main.append(body)
    main.querySelector('.loading')?.remove()
    const opened = await openIde(client, body, bar, ws, me as User)
    if (location.hash !== `#/w/${id}`) opened.close()
    else ide = opened
  } catch (err) {
    replace(main, bar, h('p', { role: 'alert', class: 'error' }, `Could not open the workspace: ${describeError(err)}`), h('a', { href: '#/' }, 'Back to the workspaces'))
  }
}

let routing = 0
async function route (): Promise<void> {
  const mine = ++routing
  ide?.close()
  ide = null
  document.title = 'Workbench'
  if (client.tokens === null) {
    me = null
    signIn()
    return
  }
  if (me === null) {
    try {
      me = await client.me()
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        client.setTokens(null)
        return
      }
      show(h('p', { role: 'alert', class: 'error' }, `The server does not answer: ${describeError(err)}`), h('button', { type: 'button', onclick: () => { void route() } }, 'Try again'))
      return
    }
  }
  if (mine !== routing) return
  const match = /^#\/w\/([0-9a-f-]{36})$/.exec(location.hash)
  if (match?.[1] !== undefined) await workspace(match[1])
  else await workspaces()
}

window.addEventListener('hashchange', () => { void route() })
void route()
