import { constants, createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto'

/** Hand-made JWTs for tests, with node:crypto only, so tokens the server never signed can be tried. */

const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url')

export type JwtKey =
  | { alg: 'HS256' | 'HS512', secret: string | Buffer }
  | { alg: 'RS256' | 'PS256' | 'ES256', privateKey: KeyObject }
  | { alg: 'none' }

/**
 * Signs `payload` with `key`. `header` overrides header fields (e.g. a lying `alg`) after the
 * signing algorithm is chosen, so the header can claim one algorithm while another signs.
 */
export function signJwt (payload: Record<string, unknown>, key: JwtKey, header: Record<string, unknown> = {}): string {
  const head = b64url(JSON.stringify({ alg: key.alg, typ: 'JWT', ...header }))
  const body = b64url(JSON.stringify(payload))
  const input = `${head}.${body}`
  let signature: Buffer
  switch (key.alg) {
    case 'none':
      signature = Buffer.alloc(0)
      break
    case 'HS256':
      signature = createHmac('sha256', key.secret).update(input).digest()
      break
    case 'HS512':
      signature = createHmac('sha512', key.secret).update(input).digest()
      break
    case 'RS256':
      signature = cryptoSign('sha256', Buffer.from(input), key.privateKey)
      break
    case 'PS256':
      signature = cryptoSign('sha256', Buffer.from(input), { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
      break
    case 'ES256':
      // JWS wants the raw r||s form, not DER
      signature = cryptoSign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      break
  }
  return `${input}.${b64url(signature)}`
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** The claims our server puts in its own access tokens, valid for 15 minutes from now. */
export function accessClaims (sub: string, sid: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds()
  return { sub, sid, permissions: ['file.read', 'file.write'], iat, exp: iat + 900, ...extra }
}

export interface KeyPair { publicPem: string, privateKey: KeyObject }

export function rsaKeyPair (): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey }
}

export function ecKeyPair (): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey }
}
