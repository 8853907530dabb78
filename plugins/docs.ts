import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/**
 * The OpenAPI 3 document at /docs/json and Swagger UI at /docs, generated from the route schemas.
 * @see https://github.com/fastify/fastify-swagger
 */
export default fp(async function docs (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Workbench API',
        version: '1.0.0',
        description: 'Workspace files in PostgreSQL with gap-free revisions and live change events. The contract: docs/api.md.'
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } }
      },
      security: [{ bearerAuth: [] }]
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'docs' })
