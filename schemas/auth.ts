import { Type, type Static } from '@sinclair/typebox'
import { Uuid } from './common.js'

export const Credentials = Type.Object({
  email: Type.String({ format: 'email', maxLength: 320 }),
  password: Type.String({ minLength: 8, maxLength: 200 })
}, { additionalProperties: false })
export type Credentials = Static<typeof Credentials>

export const RefreshBody = Type.Object({
  refreshToken: Type.String({ minLength: 1, maxLength: 512 })
}, { additionalProperties: false })

export const User = Type.Object({
  id: Uuid,
  email: Type.String(),
  permissions: Type.Array(Type.String())
})
export type User = Static<typeof User>

export const AuthResult = Type.Object({
  user: User,
  accessToken: Type.String(),
  refreshToken: Type.String(),
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' }),
  sessionId: Uuid
})
export type AuthResult = Static<typeof AuthResult>
