# hbagg: the daemon (and `hbagg receive`, `hbagg demo`) in a small non-root image.
#
#   docker build -t hbagg .
#   docker run --rm -e HBAGG_NATS_URL=nats://nats:4222 -e HBAGG_PLATFORM_URL=https://platform.example/v1/heartbeats hbagg
#
# Listens on 0.0.0.0:9470 (probes, metrics, POST /v1/beat); keeps its state in
# /var/lib/hbagg (mount a volume there so terminal states survive a restart).

# ---- build: compile TypeScript with the dev dependencies ----
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here; we build below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY examples ./examples
RUN npx tsc -p tsconfig.build.json \
 && npx tsc --strict --module nodenext --moduleResolution nodenext --target es2022 --skipLibCheck --types node \
      --rootDir . --outDir examples-dist examples/worker.ts

# ---- deps: production dependencies only ----
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM node:20-slim
ENV NODE_ENV=production \
    HBAGG_HTTP_LISTEN=0.0.0.0:9470 \
    HBAGG_STATE_DIR=/var/lib/hbagg
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The example worker (examples/worker.ts, compiled), for docker-compose.yml.
COPY --from=build /app/examples-dist ./examples-dist
COPY package.json ./
COPY schemas ./schemas
COPY config ./config
RUN mkdir -p /var/lib/hbagg && chown node:node /var/lib/hbagg
USER node
VOLUME ["/var/lib/hbagg"]
EXPOSE 9470
# The image has no curl: node's fetch does it. Ready = subscribed on NATS.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9470/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["run"]
