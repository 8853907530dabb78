import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type autocannon from 'autocannon'
import type { BenchContext, Scenario } from '../lib/context.js'
import { httpPair, loadOn, type Side } from '../lib/http-load.js'
import type { Row } from '../lib/rows.js'
import { batch, createWorkspace, freshKib, kib } from '../lib/seed.js'
import { freePort, hasCommand, log, type Proc } from '../lib/util.js'

/**
 * Scenario 12: a peer, not a baseline. Jupyter Server's contents API (Debian's `jupyter-server`,
 * the file backend browser notebooks use: `PUT`/`GET /api/contents/<path>`, JSON bodies, files on
 * disk) beside this server, both with a token, 20 connections, 1 KiB text files: reads and writes
 * of one file and of 100 files. Skipped, with a message, when `jupyter-server` is not installed.
 * The ratio is this server ÷ Jupyter (rates); both run on the server core.
 */

const CONNECTIONS = 20
const FILES = 100
const name = (i: number): string => `p${String(i).padStart(3, '0')}.txt`

/** Each client's requests: `paths` in turn, starting at its own offset (so the 100-file loads spread). */
function cycle (paths: string[], request: (path: string) => Omit<autocannon.Request, 'setupRequest'>): () => autocannon.Request[] {
  let client = 0
  return () => {
    let turn = client++
    return [{
      ...request(paths[0] ?? ''),
      setupRequest: req => {
        const path = paths[turn++ % paths.length] ?? ''
        return { ...req, ...request(path) }
      }
    }]
  }
}

async function startJupyter (context: BenchContext, root: string, token: string): Promise<Proc> {
  const port = await freePort()
  return await context.startCommand('jupyter-server', [
    'jupyter-server', `--ServerApp.port=${port}`, '--ServerApp.ip=127.0.0.1', '--ServerApp.port_retries=0',
    `--ServerApp.root_dir=${join(root, 'files')}`, `--ServerApp.token=${token}`, '--ServerApp.open_browser=False',
    '--ServerApp.allow_root=True', '--ServerApp.log_level=WARN'
  ], {
    // its runtime files (cookie secret, server info) in the temporary folder, not in ~/.local
    JUPYTER_RUNTIME_DIR: join(root, 'runtime'),
    JUPYTER_DATA_DIR: join(root, 'data'),
    JUPYTER_CONFIG_DIR: join(root, 'config')
  }, port, '/api')
}

const scenario: Scenario = {
  id: '12',
  name: 'peer: Jupyter Server contents API',
  measures: `GET and PUT /v1/workspaces/{id}/files/peer/pNNN.txt (1 KiB), one file and ${FILES} files, ${CONNECTIONS} connections`,
  baseline: 'Jupyter Server (jupyter-server) GET and PUT /api/contents/pNNN.txt (type file, format text), the same files, token auth',
  kind: 'http',
  run: async function jupyterPeer (context): Promise<Row[]> {
    if (!hasCommand('jupyter-server')) {
      log('12 skipped: jupyter-server is not installed (Debian package jupyter-server)')
      return []
    }
    const root = mkdtempSync(join(tmpdir(), 'wb-bench-jupyter-'))
    const jupyterToken = randomBytes(24).toString('hex')
    try {
      mkdirSync(join(root, 'files'))
      const jupyter = await startJupyter(context, root, jupyterToken)
      const token = await context.token()
      const project = context.project()
      const ws = await createWorkspace(project.base, token, 'peer')
      const paths = Array.from({ length: FILES }, (_, i) => name(i))
      await batch(project.base, token, ws, [{ type: 'mkdir', path: '/peer' }, ...paths.map(p => ({ type: 'create' as const, path: `/peer/${p}`, content: kib(p) }))])
      const jAuth = { authorization: `token ${jupyterToken}` }
      for (const p of paths) await jput(jupyter, jAuth, p)
      const ours = { authorization: `Bearer ${token}` }
      const json = { 'content-type': 'application/json' }
      const read = (proc: Proc, files: string[], isJupyter: boolean): (s: number) => ReturnType<typeof loadOn> => s => loadOn(proc, CONNECTIONS, s, cycle(files, path => isJupyter
        ? { method: 'GET', path: `/api/contents/${path}?type=file&format=text&content=1`, headers: jAuth }
        : { method: 'GET', path: `/v1/workspaces/${ws}/files/peer/${path}`, headers: ours }))
      const write = (proc: Proc, files: string[], isJupyter: boolean): (s: number) => ReturnType<typeof loadOn> => s => loadOn(proc, CONNECTIONS, s, cycle(files, path => isJupyter
        ? { method: 'PUT', path: `/api/contents/${path}`, headers: { ...jAuth, ...json }, body: JSON.stringify({ type: 'file', format: 'text', content: freshKib('j') }) }
        : { method: 'PUT', path: `/v1/workspaces/${ws}/files/peer/${path}`, headers: { ...ours, ...json }, body: JSON.stringify({ content: freshKib('w') }) }))
      const one = paths.slice(0, 1)
      const sides = (load: typeof read, files: string[]): { project: Side, baseline: Side } => ({
        project: { label: 'project', load: load(project, files, false) },
        baseline: { label: 'Jupyter Server', load: load(jupyter, files, true) }
      })
      const rows: Row[] = []
      rows.push(await httpPair(context.settings, { id: '12a', scenario: `peer: read one 1 KiB file, ${CONNECTIONS} conns (Jupyter)`, unit: 'req/s', ...sides(read, one), target: { min: 5 } }))
      rows.push(await httpPair(context.settings, { id: '12b', scenario: `peer: read ${FILES} 1 KiB files, ${CONNECTIONS} conns (Jupyter)`, unit: 'req/s', ...sides(read, paths), target: { min: 5 } }))
      rows.push(await httpPair(context.settings, { id: '12c', scenario: `peer: write one 1 KiB file, ${CONNECTIONS} conns (Jupyter)`, unit: 'req/s', ...sides(write, one), target: { min: 2 } }))
      rows.push(await httpPair(context.settings, { id: '12d', scenario: `peer: write ${FILES} 1 KiB files, ${CONNECTIONS} conns (Jupyter)`, unit: 'req/s', ...sides(write, paths), target: { min: 2 } }))
      // The write target also asks for a p99 below Jupyter's.
      for (const row of rows.slice(2)) {
        const below = row.p99 !== null && row.baseline?.p99 !== null && row.baseline?.p99 !== undefined && row.p99 < row.baseline.p99
        row.target = `${row.target}, p99 below Jupyter's`
        row.met = row.met === true && below
      }
      await context.stop(jupyter)
      return rows
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  }
}

export default scenario

/** Seeds one file on Jupyter (201 when new, 200 when it was there). */
async function jput (jupyter: Proc, headers: Record<string, string>, path: string): Promise<void> {
  const res = await fetch(`${jupyter.base}/api/contents/${path}`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'file', format: 'text', content: kib(path) }) })
  await res.arrayBuffer()
  if (res.status !== 200 && res.status !== 201) throw new Error(`Jupyter PUT ${path}: ${res.status}`)
}
