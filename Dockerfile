# One image for every service; compose picks the service with SERVICE (see docker-compose.yml).
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY libs libs
COPY services services
COPY tools tools
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app /app
COPY scripts scripts
# Run as the image's unprivileged user, never root.
USER node
ENV SERVICE=cdr-ingest
# TypeScript is run natively by Node 24 (type stripping): no build step.
CMD ["sh", "-c", "exec node services/$SERVICE/src/main.ts"]
