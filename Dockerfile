# syntax=docker/dockerfile:1
# vigil: multi-stage build, production dependencies only, non-root, `vigil start` as entrypoint.
# Node.js 24 LTS is the supported runtime (Node.js 20 reached end of life in April 2026).

FROM node:24.22.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY probes ./probes
COPY bench ./bench
COPY test/helpers ./test/helpers
RUN npx tsc -p tsconfig.build.json

FROM node:24.22.3-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM node:24.22.3-bookworm-slim
# redis-server for the embedded mode (no redis.url); point redis.url at a real Redis in production.
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
RUN useradd --system --uid 10001 --home-dir /var/lib/vigil --create-home vigil \
 && mkdir -p /var/lib/vigil/var && chown -R vigil /var/lib/vigil
USER vigil
WORKDIR /var/lib/vigil
# In a container, listen on all interfaces: mount a config with http.*.listen: 0.0.0.0:PORT.
EXPOSE 8080 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "/app/bin/vigil.js"]
CMD ["start", "--config", "/app/config/vigil.example.yaml"]
