# syntax=docker/dockerfile:1
#
# Targets:
#   runtime (the default, last stage)  the service: compiled JavaScript, production dependencies only
#   bench                              the autocannon suite (`npm run bench`), with dev dependencies
#                                      and Debian's redis-server, which the suite starts itself
#
#   docker build -t llm-gateway-metrics .
#   docker build --target bench -t llm-gateway-metrics:bench .

FROM node:20-bookworm-slim AS base
WORKDIR /app

# Compiles src/ to dist/ with the dev dependencies (TypeScript). The workspaces (packages/*) come
# first: npm ci links them, and the root's prepare script builds them (the service imports
# @llm-gateway-metrics/client/provider).
FROM base AS build
COPY package.json package-lock.json ./
COPY packages ./packages
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed apart so the runtime image carries no compiler or test tools.
# The workspaces' manifests let npm ci link them; no scripts, since prepare builds with dev tools
# (the runtime takes the built client from the build stage).
FROM base AS prod-deps
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/
COPY packages/react/package.json ./packages/react/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# The benchmark suite: it forks the server from TypeScript sources (tsx) and starts its own
# redis-server on a loopback port, so it keeps the dev dependencies and installs Redis.
FROM base AS bench
RUN apt-get update \
  && apt-get install -y --no-install-recommends redis-server \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/packages ./packages
COPY --chown=node:node package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node bench ./bench
COPY --chown=node:node test/helpers ./test/helpers
RUN mkdir -p bench/results && chown node:node /app bench/results
USER node
# Extra arguments go to the suite: `docker run IMAGE --duration 20 --full`.
ENTRYPOINT ["npm", "run", "bench", "--"]
CMD []

# The service. node runs as PID 1 (exec form, no npm or shell in between), so SIGTERM reaches it
# and the graceful close writes the buffered events before the process exits.
FROM base AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# node_modules/@llm-gateway-metrics/client links to it.
COPY --from=build /app/packages/client/package.json ./packages/client/
COPY --from=build /app/packages/client/dist ./packages/client/dist
# package.json marks dist/*.js as ES modules.
COPY package.json ./
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(3000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
