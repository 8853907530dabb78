import t from 'tap'
import { WorkbenchClient, type Operation } from '../../client/src/index.js'
import { buildWith, createTestDatabase, listen, PASSWORD, REDIS_URL, sleep, spawnServer, TEST_SECRET, testConfig } from '../helpers/app.js'
import { CHROMIUM, NO_CHROMIUM, ensureIdePage, launchBrowser, openTab, openWorkspace, signIn, treePaths, treeRevision } from '../helpers/browser.js'

/**
 * The IDE page across a server restart: the page's server process is killed mid-session, changes
 * are made meanwhile through another instance (same database and Redis), and the process is
 * started again on the same port and database. The page reconnects, resumes from the last
 * revision it applied, and its tree is `GET /tree` at the head: no event lost.
 */

if (CHROMIUM === null) t.plan(0, NO_CHROMIUM)

t.test('the page resumes after its server is killed and started again, with no lost event', async t => {
  await ensureIdePage()
  const database = await createTestDatabase(t)
  const env = { DATABASE_URL: database, REDIS_URL, JWT_SECRET: TEST_SECRET, WS_HEARTBEAT_MS: '2000' }
  const first = await spawnServer(t, { env })
  const base = first.base
  // Another instance on the same database and Redis: it takes the writes while the first is down.
  const other = await buildWith(t, testConfig({ DATABASE_URL: database, REDIS_URL }))
  const otherBase = await listen(other)

  const email = `restart-${Math.random().toString(36).slice(2)}@example.com`
  const api = new WorkbenchClient({ baseUrl: otherBase })
  await api.auth.register({ email, password: PASSWORD })
  const ws = await api.workspaces.create('restart')
  await api.operations.batch(ws.id, [{ type: 'create', path: '/a.ts', content: 'a' }, { type: 'mkdir', path: '/d' }])

  const browser = await launchBrowser(t)
  const tab = await openTab(t, browser)
  await signIn(tab.page, base, email)
  await openWorkspace(tab.page, 'restart')
  await tab.page.locator('[role="treeitem"][data-path="/a.ts"]').waitFor()

  const step = async (ops: Operation[]): Promise<void> => { await api.operations.batch(ws.id, ops) }
  await step([{ type: 'create', path: '/d/live.ts', content: 'seen live' }])
  await tab.page.locator('[role="treeitem"][data-path="/d/live.ts"]').waitFor({ timeout: 1_000 })

  first.kill('SIGKILL')
  await first.exited
  await tab.page.locator('.live[data-status="reconnecting"]').waitFor()
  // Missed while the page's server is down: creates, updates, a move of a directory, deletes.
  for (let i = 0; i < 20; i++) await step([{ type: 'create', path: `/d/f${i}.ts`, content: String(i) }])
  await step([{ type: 'update', path: '/a.ts', content: 'changed' }])
  await step([{ type: 'move', path: '/d', newPath: '/e' }])
  await step([{ type: 'delete', path: '/e/f3.ts' }, { type: 'copy', path: '/e/f4.ts', newPath: '/g/f4.ts' }])

  const second = await spawnServer(t, { env: { ...env, PORT: String(first.port) }, wait: false })
  t.teardown(second.stop)
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${base}/health`)).status === 200) break
    } catch {
      // not yet
    }
    await sleep(100)
  }
  // And more while the page is reconnecting and after.
  for (const i of [1, 2, 4, 5, 6, 7, 8, 9]) await step([{ type: 'update', path: `/e/f${i}.ts`, content: `again ${i}` }])
  await step([{ type: 'delete', path: '/e/f0.ts' }])

  await tab.page.locator('.live[data-status="open"]').waitFor({ timeout: 60_000 })
  const head = (await api.workspaces.get(ws.id)).revision
  for (let i = 0; i < 300 && await treeRevision(tab.page) < head; i++) await sleep(100)
  t.equal(await treeRevision(tab.page), head, 'the page reached the head')
  const tree = await api.files.treeAll(ws.id, { depth: 0 })
  t.equal(tree.revision, head)
  t.same((await treePaths(tab.page)).sort(), tree.entries.map(e => e.path).sort(), 'its tree is GET /tree')
  t.same(tab.problems.filter(p => !/ERR_CONNECTION_REFUSED|WebSocket/.test(p)), [], 'no errors on the page but the lost connection\'s')
})
