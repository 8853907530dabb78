import fp from 'fastify-plugin'
import { makeAjv } from '../../src/core/validation.js'
import type { FastifyError } from 'fastify'
import { AppError, errorBody, publicError, toAppError } from '../../src/core/errors.js'

/**
 * One place where every failure becomes the contract's error shape, plus the validators that
 * produce VALIDATION_FAILED. Bodies are validated strictly (no type coercion, unknown properties
 * rejected); query strings, params and headers are strings on the wire, so they are coerced.
 */
export default fp(async function errorHandler (fastify) {
  const strict = makeAjv({ coerceTypes: false })
  const coercing = makeAjv({ coerceTypes: 'array' })
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema))

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
