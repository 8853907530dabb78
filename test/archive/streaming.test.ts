import t from 'tap'
import { randomBytes } from 'node:crypto'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import v8 from 'node:v8'
import vm from 'node:vm'
import { listen, sleep } from '../helpers/app.js'
import { setup } from '../helpers/files.js'

/**
 * An export is streamed with backpressure: while the client reads nothing, the server holds a
 * batch of contents and a few buffers, not the archive (here 48 MiB of incompressible files).
 */

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const MiB = 1024 * 1024
const FILES = 48

for (const format of ['tar', 'zip'] as const) {
  t.test(`${format}: a client that stops reading holds the server to a bounded buffer`, async t => {
    const c = await setup(t)
    for (let i = 0; i < FILES; i += 8) {
      const ops = Array.from({ length: 8 }, (_, k) => ({ type: 'create', path: `/big/f${i + k}.bin`, content: randomBytes(MiB).toString('base64'), encoding: 'base64' }))
      t.equal((await c.batch(ops)).statusCode, 200)
    }
    const base = await listen(c.app)
    const used = (): number => { gc(); gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers }
    const before = used()
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${base}/v1/workspaces/${c.ws}/archive?format=${format}`, { headers: c.user.auth }, resolve)
      req.on('error', reject)
      req.end()
    })
    t.equal(res.statusCode, 200)
    // Read one chunk, then nothing for a while: the server must stop producing.
    await new Promise<void>(resolve => { res.once('data', () => { res.pause(); resolve() }) })
    await sleep(1500)
    const held = used() - before
    t.ok(held < 24 * MiB, `held ${Math.round(held / MiB)} MiB of a ${FILES} MiB archive while the client paused`)
    // Then read the rest: the whole archive arrives.
    let total = 0
    res.on('data', (chunk: Buffer) => { total += chunk.length })
    res.resume()
    await new Promise<void>(resolve => res.on('end', () => { resolve() }))
    t.ok(total > (FILES - 1) * MiB, `then all of it: ${Math.round(total / MiB)} MiB`)
  })
}
