# syntax=docker/dockerfile:1

# --- build: install everything, compile TypeScript, then drop the dev dependencies ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY client/package.json ./client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY plugins ./plugins
COPY routes ./routes
COPY schemas ./schemas
COPY sql ./sql
COPY client ./client
COPY app ./app
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

# --- runtime: the compiled server (migrations are in dist/sql) and production dependencies ---
FROM node:24-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
# As `npm start` (README, "Running in production"): large allocations go back to the system when freed.
ENV MALLOC_MMAP_THRESHOLD_=1048576
WORKDIR /app
# The app's files belong to root and are read-only to the user it runs as: a compromised process
# cannot rewrite its own code. Only /data (the embedded database) and the chat logs are writable.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN chmod -R a-w /app && mkdir -p /data /logs && chown node:node /data /logs
VOLUME ["/data", "/logs"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/ready').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--max-semi-space-size=4", "dist/src/server.js"]
