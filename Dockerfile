# The kubemcp image: one image for the controller (`kubemcp controller`), the Kubernetes MCP
# server (`kubemcp serve`) and the stdio bridge (`kubemcp bridge`, `kubemcp bridge-init`).
#
#   docker build -t kubemcp:0.1.0 .                      # public base image node:20-alpine
#   npm run images                                       # local: buildah, a base made on this machine
#
# NODE_IMAGE is the base of both stages: any image with Node 20, npm and /bin/sh (`npm run images`
# passes localhost/kubemcp/node:<version>, built by images/build.ts from this machine's Node).
#
# Runtime: non-root (uid/gid 65532), read-only root filesystem (writes nothing but stderr; the
# operator chart and the MCPServer construct mount an emptyDir at /tmp), no shell needed. The
# operator runs it with MCP_TRANSPORT / MCP_PORT / MCP_CONFIG_FILE set; in a pod `serve` binds
# 0.0.0.0 and uses the pod's ServiceAccount (in-cluster config).
#
# .dockerignore keeps node_modules, dist, .cluster, .git, test and bench out of the context.
# The command is the esbuild bundle (build.ts, dist/cli), which holds every package it runs
# (client-node for the controller, cdk8s for it and `render`): the image has no node_modules.
# package.json stays: its "type": "module" makes Node load the bundle's .js files as ESM.

ARG NODE_IMAGE=node:20-alpine

FROM ${NODE_IMAGE} AS build
# Behind a TLS-intercepting proxy, pass its CA bundle (a path inside the base image), e.g.
# --build-arg NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt. Build stage only.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json build.ts ./
COPY build ./build
COPY cli.ts ./
COPY charts ./charts
COPY controller ./controller
COPY mcp-server ./mcp-server
COPY gateway ./gateway
COPY lib ./lib
COPY imports ./imports
RUN npm run build

FROM ${NODE_IMAGE}
# A static busybox: `kubemcp bridge-init` copies it into a bridged stdio MCPServer's emptyDir as
# the launcher that connects the user's command to the bridge's FIFOs. Alpine: busybox-static
# (/bin/busybox.static); another base must bring a static /bin/busybox (the local base of
# `npm run images` does).
RUN if command -v apk >/dev/null 2>&1; then apk add --no-cache busybox-static; fi
LABEL org.opencontainers.image.title="kubemcp" \
      org.opencontainers.image.description="MCPServer operator and Kubernetes MCP server" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/dist/cli ./dist/cli
USER 65532:65532
# Streamable HTTP port of `kubemcp serve` (seed 001's default); /mcp, /health, /ready, /metrics.
EXPOSE 3001
ENTRYPOINT ["node", "dist/cli/kubemcp.js"]
CMD ["serve"]
