# syntax=docker/dockerfile:1
# Build: install everything (the Prisma client is generated and the admin console built at install),
# then drop dev dependencies.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY console ./console
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
COPY views ./views
COPY public ./public
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Run: the compiled server (dist/); the idp CLI runs the TypeScript sources directly. Migrations
# are applied at start.
# Set COOKIE_SECRETS, KEY_ENCRYPTION_SECRET and an https ISSUER (production refuses to start without).
FROM node:24-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=file:/app/data/idp.db
WORKDIR /app
COPY --from=build --chown=root:root /app /app
RUN mkdir -p /app/data && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=15s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# V8 sizes its heap from the machine's memory, and on a large host what a burst of requests grew
# stays resident: the young generation capped at 2 × 8 MB and a 1 GB old generation (about 20 ×
# what the server keeps live) hold 288 MB 60 s after load instead of 512 (npm run bench:memory).
# Cluster workers (WORKERS) inherit them; set NODE_OPTIONS to change them. argon2id's 19 MiB
# blocks are also given back after each sign-in (about 90 MB less, about 4 ms more CPU per
# password check) with: ENV GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=131072
ENV NODE_OPTIONS="--max-semi-space-size=8 --max-old-space-size=1024"
CMD ["node", "dist/main.js"]
