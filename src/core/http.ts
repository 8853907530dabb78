/** Small parsers of HTTP header values, shared by REST routes and the WebSocket upgrade. */

/**
 * The token of an `Authorization: Bearer <token>` header; undefined when the header is absent or
 * is not of that form.
 */
export function bearerToken (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  return /^Bearer ([^\s]+)$/i.exec(header)?.[1]
}

/** An entity tag without its quotes and weak prefix: `"19"`, `W/"19"` and `19` all give `19`. */
export function opaqueTag (tag: string): string {
  return tag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
}

/** If-None-Match (weak comparison): true when one of the listed tags, or `*`, is `current`. */
export function noneMatch (header: string | undefined, current: string): boolean {
  if (header === undefined) return false
  const tag = opaqueTag(current)
  return header.split(',').some(t => t.trim() === '*' || opaqueTag(t) === tag)
}
