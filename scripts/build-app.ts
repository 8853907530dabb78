import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { build } from 'esbuild'

/**
 * Bundles the IDE page (app/) with esbuild into dist/app/: index.html, and assets/ whose names
 * carry a hash of their content (served as immutable), each also precompressed (.br, .gz).
 * `npm run build` runs it; the browser tests call `buildIdePage()` before they start a server.
 */

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const APP_OUT = join(ROOT, 'dist', 'app')

/** Writes a file through a temporary name, so a server reading the folder never sees half of it. */
async function writeAtomic (path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(tmp, bytes)
  await rename(tmp, path)
}

export interface BuiltPage { dir: string, files: string[] }

/** Builds the page into `outDir` (default dist/app). `clean` empties it first (not while a server may read it); `brotliQuality` 0–11 (default 11). */
export async function buildIdePage (options: { outDir?: string, clean?: boolean, minify?: boolean, brotliQuality?: number } = {}): Promise<BuiltPage> {
  const outDir = options.outDir ?? APP_OUT
  if (options.clean === true) await rm(outDir, { recursive: true, force: true })
  const result = await build({
    entryPoints: [join(ROOT, 'app/src/main.ts')],
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    minify: options.minify ?? true,
    sourcemap: false,
    legalComments: 'none',
    entryNames: '[name]-[hash]',
    outdir: join(outDir, 'assets'),
    write: false,
    metafile: true,
    logLevel: 'warning'
  })
  const files: string[] = []
  const names: Record<string, string> = {}
  for (const file of result.outputFiles) {
    const name = basename(file.path)
    names[name.endsWith('.css') ? 'css' : 'js'] = name
    await writeAtomic(file.path, file.contents)
    await writeAtomic(`${file.path}.gz`, gzipSync(file.contents, { level: 9 }))
    await writeAtomic(`${file.path}.br`, brotliCompressSync(file.contents, { params: { [constants.BROTLI_PARAM_QUALITY]: options.brotliQuality ?? 11 } }))
    files.push(`assets/${name}`)
  }
  if (names.js === undefined) throw new Error('esbuild produced no JavaScript')
  let html = await readFile(join(ROOT, 'app/index.html'), 'utf8')
  html = html
    .replace('./src/main.ts', `./assets/${names.js}`)
    .replace('<!-- style -->', names.css === undefined ? '' : `<link rel="stylesheet" href="./assets/${names.css}">`)
  // A version stamp of the page (what index.html's ETag is made of).
  html = html.replace('<!-- build -->', `<meta name="build" content="${createHash('sha256').update(html).digest('hex').slice(0, 16)}">`)
  await writeAtomic(join(outDir, 'index.html'), html)
  files.push('index.html')
  return { dir: outDir, files }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now()
  const { dir, files } = await buildIdePage({ clean: true })
  console.log(`IDE page: ${files.length} files in ${dir} (${Date.now() - started} ms)`)
}
