import t from 'tap'
import type { Browser } from 'playwright-core'
import {
  CHROMIUM, NO_CHROMIUM, sharedWorkspace, launchBrowser, openTab, openWorkspace, signIn, treeItem, treePaths, treeRevision
} from '../helpers/browser.js'

/**
 * The IDE page in real headless Chromium against the real server on a real port: two users (two
 * browser contexts) in one workspace; what one does through the page (create, edit, move,
 * delete), the other sees within a second; presence shows both and the file each has open, and
 * one leaving. (One user's editor, conflicts, search: ide-editor.test.ts.)
 */

if (CHROMIUM === null) t.plan(0, NO_CHROMIUM)
// One browser for the file (a context per user keeps them apart); the page is built once.
const browser = CHROMIUM === null ? null : await launchBrowser(t)
const chromium = (): Browser => {
  if (browser === null) throw new Error(NO_CHROMIUM)
  return browser
}

const SEEN_WITHIN_MS = 1_000

t.test('two users in one workspace: each change through the page reaches the other within a second', async t => {
  const { base, owner, ownerEmail, otherEmail, workspaceId } = await sharedWorkspace(t)
  const browser = chromium()
  const ada = await openTab(t, browser)
  const bob = await openTab(t, browser)
  await signIn(ada.page, base, ownerEmail)
  await signIn(bob.page, base, otherEmail)
  await openWorkspace(ada.page, 'shared')
  await openWorkspace(bob.page, 'shared')

  // Create, through the dialog.
  await ada.page.getByRole('button', { name: 'New file' }).click()
  const dialog = ada.page.getByRole('dialog')
  await dialog.getByLabel('Path of the new file').fill('/src/app.ts')
  await dialog.getByRole('button', { name: 'Create' }).click()
  await treeItem(ada.page, '/src/app.ts').waitFor()
  await treeItem(bob.page, '/src/app.ts').waitFor({ timeout: SEEN_WITHIN_MS })
  t.ok(await treeItem(bob.page, '/src').isVisible(), 'the parent directory too')
  await ada.page.getByRole('heading', { level: 2, name: '/src/app.ts' }).waitFor()
  t.pass('the new file is open in Ada\'s editor')

  // Bob opens it; Ada edits and saves (Ctrl+S): Bob's editor (no local edits) shows the new text.
  await treeItem(bob.page, '/src/app.ts').click()
  await bob.page.getByRole('heading', { level: 2, name: '/src/app.ts' }).waitFor()
  await ada.page.getByLabel('Content of /src/app.ts').click()
  await ada.page.keyboard.type('export const answer = 42')
  t.equal(await ada.page.locator('#editor-title').getAttribute('data-dirty'), 'true', 'unsaved edits are shown')
  await ada.page.keyboard.press('Control+s')
  await ada.page.getByRole('status').filter({ hasText: /^Saved/ }).waitFor()
  const started = Date.now()
  await bob.page.locator('.cm-content').filter({ hasText: 'export const answer = 42' }).waitFor({ timeout: SEEN_WITHIN_MS })
  t.ok(Date.now() - started <= SEEN_WITHIN_MS, `Bob's editor updated in ${Date.now() - started} ms`)
  t.equal((await owner.files.read(workspaceId, '/src/app.ts')).content, 'export const answer = 42', 'saved on the server')

  // Move, through the dialog: Bob's tree and his open editor follow.
  await treeItem(ada.page, '/src/app.ts').click()
  await ada.page.getByRole('toolbar', { name: 'File actions' }).getByRole('button', { name: 'Move' }).click()
  await ada.page.getByRole('dialog').getByLabel('New path').fill('/lib/main.ts')
  await ada.page.getByRole('dialog').getByRole('button', { name: 'Move' }).click()
  await treeItem(ada.page, '/lib/main.ts').waitFor()
  await treeItem(bob.page, '/lib/main.ts').waitFor({ timeout: SEEN_WITHIN_MS })
  await treeItem(bob.page, '/src/app.ts').waitFor({ state: 'detached', timeout: SEEN_WITHIN_MS })
  await bob.page.getByRole('heading', { level: 2, name: '/lib/main.ts' }).waitFor({ timeout: SEEN_WITHIN_MS })

  // Bob edits the moved file and saves: the move did not make his text stale.
  await bob.page.getByLabel('Content of /lib/main.ts').click()
  await bob.page.keyboard.press('End')
  await bob.page.keyboard.type('\n// reviewed')
  await bob.page.getByRole('button', { name: 'Save' }).click()
  await bob.page.getByRole('status').filter({ hasText: /^Saved/ }).waitFor()
  await ada.page.locator('.cm-content').filter({ hasText: '// reviewed' }).waitFor({ timeout: SEEN_WITHIN_MS })

  // Delete, with the keyboard: select in the tree, Delete, confirm.
  await ada.page.getByRole('button', { name: 'New folder' }).click()
  await ada.page.getByRole('dialog').getByLabel('Path of the new folder').fill('/tmp')
  await ada.page.getByRole('dialog').getByRole('button', { name: 'Create' }).click()
  // (as for the steps above: from the change landing in Ada's own tree, not from her click)
  await treeItem(ada.page, '/tmp').waitFor()
  await treeItem(bob.page, '/tmp').waitFor({ timeout: SEEN_WITHIN_MS })
  await treeItem(ada.page, '/tmp').click()
  await treeItem(ada.page, '/tmp').press('Delete')
  await ada.page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
  await treeItem(ada.page, '/tmp').waitFor({ state: 'detached' })
  await treeItem(bob.page, '/tmp').waitFor({ state: 'detached', timeout: SEEN_WITHIN_MS })

  // Both trees are GET /tree at the same revision.
  const tree = await owner.files.treeAll(workspaceId, { depth: 0 })
  for (const tab of [ada, bob]) {
    await t.resolves(async () => {
      for (let i = 0; i < 50 && await treeRevision(tab.page) < tree.revision; i++) await new Promise(resolve => setTimeout(resolve, 20))
    })
    t.equal(await treeRevision(tab.page), tree.revision)
    t.same((await treePaths(tab.page)).sort(), tree.entries.map(e => e.path).sort(), 'the tree is GET /tree')
  }
  t.same(ada.problems, [], 'no errors on Ada\'s page')
  t.same(bob.problems, [], 'no errors on Bob\'s page')
})

t.test('presence: both users are listed with the file each has open; one closes, the other sees it leave', async t => {
  const { base, owner, ownerEmail, otherEmail, workspaceId } = await sharedWorkspace(t, { WS_HEARTBEAT_MS: '1000' })
  await owner.files.write(workspaceId, '/a.md', { content: 'a' })
  await owner.files.write(workspaceId, '/b.md', { content: 'b' })
  const browser = chromium()
  const ada = await openTab(t, browser)
  const bob = await openTab(t, browser)
  await signIn(ada.page, base, ownerEmail)
  await signIn(bob.page, base, otherEmail)
  await openWorkspace(ada.page, 'shared')
  await openWorkspace(bob.page, 'shared')
  const here = (tab: typeof ada): ReturnType<typeof ada.page.getByRole> => tab.page.getByRole('list', { name: /^Here now/ })

  for (const tab of [ada, bob]) {
    await here(tab).getByRole('listitem').filter({ hasText: ownerEmail }).waitFor({ timeout: SEEN_WITHIN_MS * 5 })
    await here(tab).getByRole('listitem').filter({ hasText: otherEmail }).waitFor({ timeout: SEEN_WITHIN_MS * 5 })
    t.equal(await here(tab).getByRole('listitem').count(), 2, 'both, once each')
  }
  t.match(await here(ada).getByRole('listitem').first().textContent(), `${ownerEmail} (you) no file open`, 'oneself first')

  // Opening a file is announced.
  await treeItem(ada.page, '/a.md').click()
  await here(bob).getByRole('listitem').filter({ hasText: ownerEmail }).filter({ hasText: '/a.md' }).waitFor({ timeout: SEEN_WITHIN_MS })
  await treeItem(bob.page, '/b.md').click()
  await here(ada).getByRole('listitem').filter({ hasText: otherEmail }).filter({ hasText: '/b.md' }).waitFor({ timeout: SEEN_WITHIN_MS })
  // A move of the open file moves what is announced.
  await owner.operations.apply(workspaceId, { type: 'move', path: '/b.md', newPath: '/c.md' })
  await here(ada).getByRole('listitem').filter({ hasText: otherEmail }).filter({ hasText: '/c.md' }).waitFor({ timeout: SEEN_WITHIN_MS })

  // Bob closes his tab: Ada sees him leave.
  await bob.context.close()
  await here(ada).getByRole('listitem').filter({ hasText: otherEmail }).waitFor({ state: 'detached', timeout: 2_500 })
  t.equal(await here(ada).getByRole('listitem').count(), 1, 'only Ada is left')
  t.equal(await ada.page.getByRole('heading', { name: 'Here now (1)' }).count(), 1)
  t.same(ada.problems, [])
})
