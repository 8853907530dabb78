import type { ValidateFunction } from 'ajv'
import type { Change } from '../../schemas/files.js'
import { ClientMessage } from '../../schemas/ws.js'
import { errors, schemaErrors, type AppError } from '../core/errors.js'
import { hasPoisonedKey, makeAjv } from '../core/validation.js'

/** The WebSocket protocol's wire format (docs/api.md, "WebSocket"): close codes, channels, frames, client messages. */

/** WebSocket close codes this server uses. */
export const Close = {
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  tryAgainLater: 1013,
  unauthenticated: 4401,
  forbidden: 4403
} as const

/** A text frame as the hub sends it: encoded once, shared by every socket. */
export type Frame = Buffer

const CHANNEL_PREFIX = 'workspace:'

export const channelName = (workspaceId: string): string => `${CHANNEL_PREFIX}${workspaceId}`

/**
 * The workspace a channel names. Only for channels the schema (`Channel` in schemas/ws.ts) has
 * accepted; lower-cased so that one workspace is one channel however the client spells its id.
 */
export const parseChannel = (channel: string): string => channel.slice(CHANNEL_PREFIX.length)

export function eventFrame (workspaceId: string, change: Change): Frame {
  return Buffer.from(JSON.stringify({ type: 'event', channel: channelName(workspaceId), event: 'file.changed', revision: change.revision, data: change }))
}

/** VALIDATION_FAILED from a validator's errors, named after the first one, as REST names it. */
export function validationError (validate: ValidateFunction): AppError {
  const first = validate.errors?.[0]
  return schemaErrors(`${first?.instancePath ?? ''} ${first?.message ?? 'invalid'}`.trim(), validate.errors ?? [])
}

const ajv = makeAjv()
/** one validator per message type, so that an error names the fields of the type that was sent */
const messageValidators = new Map<string, ValidateFunction<ClientMessage>>(
  ClientMessage.anyOf.map(schema => [schema.properties.type.const, ajv.compile<ClientMessage>(schema)])
)

/** A client's text frame as a message of the protocol, or the VALIDATION_FAILED error to answer it with. */
export function parseClientMessage (raw: string): { message: ClientMessage } | { error: AppError } {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    return { error: errors.validation('message is not valid JSON') }
  }
  // As a REST body with them is refused: metadata must not be stored with them over one door only.
  if (hasPoisonedKey(raw, parsed)) return { error: errors.validation('message contains a forbidden prototype property (__proto__ or constructor.prototype)') }
  const type = typeof parsed === 'object' && parsed !== null && 'type' in parsed ? parsed.type : undefined
  const validate = typeof type === 'string' ? messageValidators.get(type) : undefined
  if (validate === undefined) return { error: errors.validation(`unknown message type ${JSON.stringify(type ?? null)}`) }
  return validate(parsed) ? { message: parsed } : { error: validationError(validate) }
}
