# syntax=docker/dockerfile:1
# The one zkleader image: webhook, sidecar, certs, inject, status, tenant, config and lock are subcommands.
# Build and runtime stages share Node 24 on Debian 12 (bookworm): the native
# zookeeper addon is compiled against that glibc and Node's own headers.
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies, with the zookeeper addon built from its bundled C client.
FROM ${NODE_IMAGE} AS dependencies
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# nodedir: node-gyp compiles against the headers of the image's Node instead of
# downloading them. npm ci: the lockfile records every platform's optional binaries
# (@swc/core-darwin-*, ...), so the image gets exactly the versions it records, and the
# build fails if package.json and the lockfile disagree. The whole install, then a prune:
# the postinstall step applies patches/ to the zookeeper binding with patch-package (a dev
# dependency) and rebuilds the addon (test/deploy/imageDependencies.test.ts runs this step).
RUN npm_config_nodedir=/usr/local npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && test -f node_modules/zookeeper/build/Release/zookeeper.node

# The TypeScript build; dev dependencies stay in this stage. Its output is the same on
# every platform, so a multi-platform build (docker buildx --platform
# linux/amd64,linux/arm64) runs it once, natively; the dependencies stage above runs per
# target platform, because the addon is native code.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY cli ./cli
COPY src ./src
COPY sidecar ./sidecar
COPY zookeeper ./zookeeper
COPY tenant ./tenant
COPY config ./config
COPY lock ./lock
COPY certs ./certs
RUN npm run build

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# 65532: the conventional "nonroot" uid; the manifests run it with a read-only root
# filesystem, and nothing at run time needs a shell (exec-form entrypoint).
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli/zkleader.js"]
CMD ["--help"]
