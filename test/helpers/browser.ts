import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { buildIdePage } from '../../scripts/build-app.js'
import { WorkbenchClient } from '../../client/src/index.js'
import { build, listen, PASSWORD, type Teardown } from './app.js'

/**
 * Real headless Chromium (Debian's `chromium`, driven by playwright-core) for the IDE page's
 * tests. `CHROMIUM_PATH` names another binary; without one the tests are skipped with a message.
 */

function findChromium (): string | null {
  const given = process.env.CHROMIUM_PATH
  if (given !== undefined && given !== '') return existsSync(given) ? given : null
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      const path = execFileSync('which', [name], { encoding: 'utf8' }).trim()
      if (path !== '') return path
    } catch {
      // not this one
    }
  }
  return null
}

export const CHROMIUM = findChromium()
export const NO_CHROMIUM = 'chromium is not installed (apt-get install chromium, or set CHROMIUM_PATH): the browser tests are skipped'

let built: Promise<unknown> | null = null
/** Builds dist/app with the build's own function, once per test process (tests never need `npm run build` first). */
export async function ensureIdePage (): Promise<void> {
  built ??= buildIdePage({ brotliQuality: 5 })
  await built
}

export async function launchBrowser (t: Teardown): Promise<Browser> {
  if (CHROMIUM === null) throw new Error(NO_CHROMIUM)
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
  t.teardown(async () => { await browser.close() })
  return browser
}

export interface Tab {
  context: BrowserContext
  page: Page
  /** messages the page logged as errors, and Content-Security-Policy violations */
  problems: string[]
}

/** A new browser context (one user: its own storage) with one page. */
export async function openTab (t: Teardown, browser: Browser): Promise<Tab> {
  const context = await browser.newContext()
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', message => { if (message.type() === 'error') problems.push(message.text()) })
  page.on('pageerror', error => { problems.push(error.message) })
  return { context, page, problems }
}

/** Signs in through the page's form and waits for the workspace list. */
export async function signIn (page: Page, base: string, email: string, password = PASSWORD): Promise<void> {
  await page.goto(`${base}/app/`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Workspaces' }).waitFor()
}

/** Opens a workspace from the list and waits until the page follows it live. */
export async function openWorkspace (page: Page, name: string): Promise<void> {
  await page.getByRole('link', { name }).click()
  await page.getByRole('tree', { name: 'Files' }).waitFor({ state: 'attached' })
  await page.locator('.live[data-status="open"]').waitFor()
}

export const treeItem = (page: Page, path: string): ReturnType<Page['locator']> =>
  page.locator(`[role="treeitem"][data-path="${path.replace(/["\\]/g, '\\$&')}"]`)

/** The paths the page's tree shows (every directory is open unless closed by hand). */
export async function treePaths (page: Page): Promise<string[]> {
  return await page.locator('[role="treeitem"]').evaluateAll(items => items.map(item => item.getAttribute('data-path') ?? ''))
}

/** The revision the page's tree was drawn at. */
export async function treeRevision (page: Page): Promise<number> {
  return Number(await page.getByRole('tree', { name: 'Files' }).getAttribute('data-revision'))
}

/** The editor's text, as CodeMirror shows it (lines joined with \n). */
export async function editorText (page: Page): Promise<string> {
  return await page.locator('.cm-content').evaluate(el => {
    const lines = [...el.querySelectorAll('.cm-line')].map(line => line.textContent ?? '')
    return lines.join('\n')
  })
}

export interface SharedWorkspace { base: string, owner: WorkbenchClient, ownerEmail: string, otherEmail: string, workspaceId: string }

/** A server on a real port (the page built), two users, and a workspace of the first with the second as an editor. */
export async function sharedWorkspace (t: Teardown, env: Record<string, string> = {}): Promise<SharedWorkspace> {
  await ensureIdePage()
  const app = await build(t, env)
  const base = await listen(app)
  const suffix = Math.random().toString(36).slice(2)
  const ownerEmail = `ada-${suffix}@example.com`
  const otherEmail = `bob-${suffix}@example.com`
  const owner = new WorkbenchClient({ baseUrl: base })
  const other = new WorkbenchClient({ baseUrl: base })
  await owner.auth.register({ email: ownerEmail, password: PASSWORD })
  await other.auth.register({ email: otherEmail, password: PASSWORD })
  const ws = await owner.workspaces.create('shared')
  await owner.members.put(ws.id, { email: otherEmail, role: 'editor' })
  return { base, owner, ownerEmail, otherEmail, workspaceId: ws.id }
}
