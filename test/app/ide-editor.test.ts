import t from 'tap'
import type { Browser } from 'playwright-core'
import { build, listen, PASSWORD } from '../helpers/app.js'
import {
  CHROMIUM, NO_CHROMIUM, sharedWorkspace, editorText, ensureIdePage, launchBrowser, openTab, openWorkspace, signIn, treeItem
} from '../helpers/browser.js'

/**
 * The IDE page in real headless Chromium against the real server on a real port, one user: a
 * stale save shows the conflict and changes nothing on the server; the activity log; search;
 * signing in, registering, creating a workspace and signing out through the page.
 */

if (CHROMIUM === null) t.plan(0, NO_CHROMIUM)
// One browser for the file (a context per user keeps them apart); the page is built once.
const browser = CHROMIUM === null ? null : await launchBrowser(t)
const chromium = (): Browser => {
  if (browser === null) throw new Error(NO_CHROMIUM)
  return browser
}

t.test('a stale save shows the conflict and changes nothing on the server', async t => {
  const { base, owner, ownerEmail, workspaceId } = await sharedWorkspace(t)
  await owner.files.write(workspaceId, '/notes.md', { content: '# Notes\n' })
  const browser = chromium()
  const ada = await openTab(t, browser)
  await signIn(ada.page, base, ownerEmail)
  await openWorkspace(ada.page, 'shared')
  await treeItem(ada.page, '/notes.md').click()
  await ada.page.getByRole('heading', { level: 2, name: '/notes.md' }).waitFor()
  await ada.page.getByLabel('Content of /notes.md').click()
  await ada.page.keyboard.press('Control+End')
  await ada.page.keyboard.type('mine\n')

  // Someone else writes the file meanwhile (an agent, another tab).
  const theirs = await owner.files.write(workspaceId, '/notes.md', { content: '# Notes\ntheirs\n' })
  await ada.page.getByRole('status').filter({ hasText: 'Changed on the server' }).waitFor()
  t.match(await editorText(ada.page), /mine/, 'local edits are kept, not replaced by the update')

  await ada.page.getByRole('button', { name: 'Save' }).click()
  const alert = ada.page.getByRole('alert').filter({ hasText: 'Conflict' })
  await alert.waitFor()
  t.match(await alert.textContent(), /\/notes\.md was changed on the server since you opened it \(it is now version 2\)/)
  const after = await owner.files.read(workspaceId, '/notes.md')
  t.equal(after.content, '# Notes\ntheirs\n', 'the server still has their text')
  t.equal(after.etag, theirs.file.etag, 'and the same version')
  t.equal((await owner.workspaces.get(workspaceId)).revision, theirs.revision, 'nothing was written')

  // Load theirs: the editor shows the server's text, and the next save goes through.
  await alert.getByRole('button', { name: 'Discard mine and load theirs' }).click()
  await ada.page.locator('.cm-content').filter({ hasText: 'theirs' }).waitFor()
  t.equal(await editorText(ada.page), '# Notes\ntheirs\n')
  t.equal(await ada.page.getByRole('alert').filter({ hasText: 'Conflict' }).count(), 0, 'the conflict is gone')
  await ada.page.getByLabel('Content of /notes.md').click()
  await ada.page.keyboard.press('Control+Home')
  await ada.page.keyboard.type('> ')
  await ada.page.keyboard.press('Control+s')
  await ada.page.getByRole('status').filter({ hasText: /^Saved/ }).waitFor()
  t.equal((await owner.files.read(workspaceId, '/notes.md')).content, '> # Notes\ntheirs\n')

  // The activity log lists the refused save and the saves of this session.
  const activity = ada.page.getByRole('list', { name: 'Activity of this session' })
  await activity.locator('li.error').filter({ hasText: 'PRECONDITION_FAILED' }).waitFor()
  await activity.locator('li:not(.error)').filter({ hasText: 'file.write' }).filter({ hasText: '/notes.md' }).waitFor()
  t.pass('the refused and the accepted save are listed')
  t.same(ada.problems.filter(p => !p.includes('412')), [], 'no errors on the page but the refused save\'s 412')
})

t.test('search: results from the server, and a result opens the file at its line', async t => {
  const { base, owner, ownerEmail, workspaceId } = await sharedWorkspace(t)
  await owner.operations.batch(workspaceId, [
    { type: 'create', path: '/a.ts', content: 'const alpha = 1\nconst needle = 2\n' },
    { type: 'create', path: '/b/c.md', content: 'no\nneedle here\n' }
  ])
  const browser = chromium()
  const ada = await openTab(t, browser)
  await signIn(ada.page, base, ownerEmail)
  await openWorkspace(ada.page, 'shared')
  await ada.page.getByRole('searchbox', { name: 'Search in files' }).fill('needle')
  await ada.page.getByRole('searchbox', { name: 'Search in files' }).press('Enter')
  await ada.page.getByRole('status').filter({ hasText: '2 matches in 2 files' }).waitFor()
  const results = ada.page.getByRole('list', { name: 'Search results' })
  t.same(await results.locator('button.result').evaluateAll(bs => bs.map(b => `${b.getAttribute('data-path') ?? ''}:${b.getAttribute('data-line') ?? ''}`)), ['/a.ts:2', '/b/c.md:2'])
  await results.getByRole('button', { name: /needle here/ }).click()
  await ada.page.getByRole('heading', { level: 2, name: '/b/c.md' }).waitFor()
  t.equal(await editorText(ada.page), 'no\nneedle here\n'.replace(/\n$/, '\n'), 'the file is open')
  t.same(ada.problems, [])
})

t.test('sign in, register and create a workspace through the page; signing out forgets the tokens', async t => {
  await ensureIdePage()
  const app = await build(t)
  const base = await listen(app)
  const browser = chromium()
  const tab = await openTab(t, browser)
  const email = `new-${Math.random().toString(36).slice(2)}@example.com`
  await tab.page.goto(`${base}/app/`)
  await tab.page.getByLabel('Email').fill(email)
  await tab.page.getByLabel('Password').fill('short')
  await tab.page.getByRole('button', { name: 'Sign in' }).click()
  t.equal(await tab.page.getByRole('heading', { name: 'Workspaces' }).count(), 0, 'the form checks the password length first')
  await tab.page.getByLabel('Password').fill(PASSWORD)
  await tab.page.getByRole('button', { name: 'Sign in' }).click()
  await tab.page.getByRole('alert').filter({ hasText: 'Wrong email or password.' }).waitFor()
  await tab.page.getByRole('button', { name: 'Register' }).click()
  await tab.page.getByRole('heading', { name: 'Workspaces' }).waitFor()
  await tab.page.getByLabel('New workspace name').fill('mine')
  await tab.page.getByLabel('New workspace name').press('Enter')
  await tab.page.getByRole('tree', { name: 'Files' }).waitFor({ state: 'attached' })
  t.match(tab.page.url(), /#\/w\/[0-9a-f-]{36}$/)
  // A reload keeps the session (tokens in localStorage).
  await tab.page.reload()
  await tab.page.getByRole('tree', { name: 'Files' }).waitFor({ state: 'attached' })
  await tab.page.getByRole('button', { name: 'Sign out' }).click()
  await tab.page.getByRole('heading', { name: 'Sign in to Workbench' }).waitFor()
  t.equal((await tab.context.storageState()).origins.flatMap(o => o.localStorage).find(e => e.name === 'workbench.tokens')?.value ?? null, null, 'the tokens are gone')
  t.same(tab.problems.filter(p => !/401/.test(p)), [])
})
