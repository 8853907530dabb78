import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox"
const fileRoutes: FastifyPluginAsyncTypebox = async () => {}
export default fileRoutes
