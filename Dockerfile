# syntax=docker/dockerfile:1
# Build: compile TypeScript and better-sqlite3 (built from source), then drop dev dependencies.
FROM node:20-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# npm ci runs the "prepare" script (tsc + oclif manifest), producing dist/ and oclif.manifest.json.
RUN npm ci \
 && npm prune --omit=dev

# Runtime: no compiler, no dev dependencies, not root.
FROM node:20-slim
ENV HOST=0.0.0.0 PORT=8001 INGEST_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/package.json /app/oclif.manifest.json ./
# The embedded database and the local dead-letter queue live in /data: mount a persistent volume there.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8001) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "bin/run.js", "serve"]
