import fp from 'fastify-plugin'
import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyError } from 'fastify'
import { AppError, errorBody, errors } from '../src/errors.js'

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
    const hideMessage = appError.statusCode === 500 && fastify.config.NODE_ENV !== 'development'
    const body = hideMessage ? errors.internal().toJSON() : appError.toJSON()
    return reply.code(appError.statusCode).send(body)
  })

  fastify.setNotFoundHandler(function notFound (request, reply) {
    return reply.code(404).send(errorBody(404, 'NOT_FOUND', `route ${request.method} ${request.url.split('?')[0] ?? ''} not found`))
  })
}, { name: 'error-handler', dependencies: ['config'] })

function makeAjv (options: AjvOptions): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, ...options })
  addFormats.default(ajv)
  return ajv
}

const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08006', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND'])

/** Maps anything thrown to an AppError; what is not recognised is an INTERNAL 500. */
export function toAppError (error: unknown): AppError {
  if (error instanceof AppError) return error
  const e = error as Partial<FastifyError> & { validation?: Array<{ instancePath?: string, message?: string, keyword?: string, params?: unknown }> }
  if (Array.isArray(e.validation)) {
    const errs = e.validation.map(v => ({ path: v.instancePath ?? '', message: v.message ?? 'invalid', keyword: v.keyword ?? '', params: v.params ?? {} }))
    return errors.validation(e.message ?? 'validation failed', { errors: errs })
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.validation(e.message ?? 'the body is not valid JSON')
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.payloadTooLarge()
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType()
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.validation('content-length does not match the body')
    case '57014':
      return errors.unavailable('the database did not answer in time')
  }
  if (typeof e.code === 'string' && PG_UNAVAILABLE.has(e.code)) return errors.unavailable('the database is unavailable')
  if (typeof e.message === 'string' && /timeout exceeded when trying to connect|Connection terminated/i.test(e.message)) {
    return errors.unavailable('the database is unavailable')
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError(e.statusCode, typeof e.code === 'string' ? e.code : 'BAD_REQUEST', e.message ?? 'bad request')
  }
  return new AppError(500, 'INTERNAL', e.message ?? 'internal error')
}
