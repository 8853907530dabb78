// Module hooks for register.mjs: `./x.js` finds `./x.ts` (the sources import by their compiled
// names), and a `.ts` file is transpiled by esbuild with an inline source map, lines kept.
// Transpiled files are kept in node_modules/.cache (keyed by path, source and esbuild's version):
// every test file and every server a test spawns loads the same few hundred modules, and a run
// starts a few hundred processes.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { transform, version } from 'esbuild'

const CACHE = fileURLToPath(new URL('../../node_modules/.cache/workbench-test-loader/', import.meta.url))
const OPTIONS = { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline' }

export async function resolve (specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context)
  } catch (error) {
    const relative = specifier.startsWith('.') || specifier.startsWith('file:')
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !relative || !specifier.endsWith('.js')) throw error
    return nextResolve(`${specifier.slice(0, -3)}.ts`, context)
  }
}

export async function load (url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) return nextLoad(url, context)
  const file = fileURLToPath(url)
  const text = await readFile(file, 'utf8')
  const kept = `${CACHE}${createHash('sha256').update(`${version}\0${JSON.stringify(OPTIONS)}\0${file}\0${text}`).digest('hex')}.js`
  const source = await readFile(kept, 'utf8').catch(async () => {
    const { code } = await transform(text, { ...OPTIONS, sourcefile: file })
    // (written beside and renamed: a process reading it meanwhile sees all of it or none)
    const partial = `${kept}.${randomBytes(6).toString('hex')}`
    await mkdir(CACHE, { recursive: true })
    await writeFile(partial, code)
    await rename(partial, kept)
    return code
  })
  return { format: 'module', source, shortCircuit: true }
}
