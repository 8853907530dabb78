import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import mime from 'mime-types'
import { errors } from '../../src/core/errors.js'

/**
 * GET /app/: the IDE page, bundled by `npm run build` (scripts/build-app.ts) into dist/app. The
 * few files are read once at start and answered from memory: the hashed assets as immutable
 * (precompressed, brotli or gzip as the client accepts), index.html revalidated every time
 * (`no-cache` with an ETag). Off with SERVE_APP=false (then /app/ is 404 like any unknown route).
 * The page's own Content-Security-Policy: its scripts and styles from here only, and the API and
 * its WebSocket on the same host.
 */

/** dist/app, from the source (routes/app) and from the compiled server (dist/routes/app) alike. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const APP_DIR = basename(ROOT) === 'dist' ? join(ROOT, 'app') : join(ROOT, 'dist', 'app')

export const APP_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // CodeMirror sets a few inline styles (its scripts are bundled and stay 'self' only).
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'"
].join('; ')

interface Asset {
  body: Buffer
  br: Buffer | undefined
  gzip: Buffer | undefined
  type: string
  etag: string
  cacheControl: string
}

async function readOptional (path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch {
    return undefined
  }
}

async function load (dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>()
  const add = async (name: string, immutable: boolean): Promise<void> => {
    const body = await readFile(join(dir, name))
    assets.set(name, {
      body,
      br: await readOptional(join(dir, `${name}.br`)),
      gzip: await readOptional(join(dir, `${name}.gz`)),
      type: mime.contentType(basename(name)) || 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      cacheControl: immutable ? 'public, max-age=31536000, immutable' : 'no-cache'
    })
  }
  await add('index.html', false)
  for (const name of await readdir(join(dir, 'assets'))) {
    if (name.endsWith('.br') || name.endsWith('.gz') || name.endsWith('.tmp')) continue
    await add(`assets/${name}`, true)
  }
  return assets
}

const appRoutes: FastifyPluginAsync = async (fastify) => {
  let assets = new Map<string, Asset>()
  try {
    assets = await load(APP_DIR)
  } catch (err) {
    fastify.log.warn({ dir: APP_DIR, err: (err as Error).message }, 'the IDE page is not built (npm run build): /app/ answers 404')
  }

  function send (request: FastifyRequest, reply: FastifyReply, name: string): FastifyReply {
    const asset = assets.get(name)
    if (asset === undefined) throw errors.notFound(`no such file: ${request.url.split('?')[0] ?? ''}`)
    void reply.headers({
      'content-type': asset.type,
      'cache-control': asset.cacheControl,
      etag: asset.etag,
      'content-security-policy': APP_CSP,
      vary: 'accept-encoding'
    })
    const inm = request.headers['if-none-match']
    if (inm !== undefined && inm.split(',').some(tag => tag.trim().replace(/^W\//, '') === asset.etag)) return reply.code(304).send()
    const accept = String(request.headers['accept-encoding'] ?? '')
    if (asset.br !== undefined && /\bbr\b/.test(accept)) return reply.header('content-encoding', 'br').send(asset.br)
    if (asset.gzip !== undefined && /\bgzip\b/.test(accept)) return reply.header('content-encoding', 'gzip').send(asset.gzip)
    return reply.send(asset.body)
  }

  fastify.get('/app', { schema: { hide: true } }, async function appRedirect (request, reply) {
    const query = request.url.indexOf('?')
    return await reply.redirect(`/app/${query === -1 ? '' : request.url.slice(query)}`, 301)
  })
  fastify.get('/app/', { schema: { hide: true } }, async function appPage (request, reply) {
    return send(request, reply, 'index.html')
  })
  fastify.get<{ Params: { '*': string } }>('/app/*', { schema: { hide: true } }, async function appAsset (request, reply) {
    return send(request, reply, request.params['*'])
  })
}
export default appRoutes
