import fp from 'fastify-plugin'
import type { Ajv } from 'ajv'
import fastJsonStringify from 'fast-json-stringify'
import { makeAjv } from '../../src/core/validation.js'
import type { FastifyError } from 'fastify'
import { AppError, errorBody, publicError, toAppError } from '../../src/core/errors.js'

/**
 * One place where every failure becomes the contract's error shape, plus the validators that
 * produce VALIDATION_FAILED (and the response serializers). Bodies are validated strictly (no type
 * coercion, unknown properties rejected); query strings, params and headers are strings on the
 * wire, so they are coerced.
 */
export default fp(async function errorHandler (fastify) {
  fastify.setValidatorCompiler(({ schema, httpPart }) => compilers().validator(schema, httpPart === 'body'))
  fastify.setSerializerCompiler(({ schema }) => compilers().serializer(schema))

  fastify.setErrorHandler(function handleError (error: FastifyError | AppError, request, reply) {
    const appError = toAppError(error)
    if (appError.statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
    } else {
      request.log.info({ code: appError.code, message: appError.message }, 'request rejected')
    }
    if (appError.headers !== undefined) void reply.headers(appError.headers)
    return reply.code(appError.statusCode).send(publicError(appError, fastify.config.NODE_ENV === 'development').toJSON())
  })

  fastify.setNotFoundHandler(function notFound (request, reply) {
    return reply.code(404).send(errorBody(404, 'NOT_FOUND', `route ${request.method} ${request.url.split('?')[0] ?? ''} not found`))
  })
}, { name: 'error-handler', dependencies: ['config'] })

type Serializer = (data: unknown) => string
type Validator = ReturnType<Ajv['compile']>

/**
 * Route schemas compiled once per process, however many apps it builds (a test process builds
 * dozens, and compiling every route's validators and serializers was most of each build's CPU).
 * Kept by the schema's JSON: the routes build equal schemas afresh for each app. A validator is
 * stateless between calls (Fastify reads its `errors` right after the call), a serializer pure.
 */
let shared: { validator: (schema: object, body: boolean) => Validator, serializer: (schema: object) => Serializer } | undefined
function compilers (): NonNullable<typeof shared> {
  if (shared !== undefined) return shared
  const strict = makeAjv({ coerceTypes: false })
  const coercing = makeAjv({ coerceTypes: 'array' })
  const validators = new Map<string, Validator>()
  const serializers = new Map<string, Serializer>()
  shared = {
    validator: (schema, body) => kept(validators, `${body ? 'body' : 'coerced'}\u0000${JSON.stringify(schema)}`, () => (body ? strict : coercing).compile(schema)),
    serializer: schema => kept(serializers, JSON.stringify(schema), () => fastJsonStringify(schema))
  }
  return shared
}

function kept<V> (map: Map<string, V>, key: string, make: () => V): V {
  let value = map.get(key)
  if (value === undefined) map.set(key, value = make())
  return value
}
