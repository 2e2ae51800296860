# Tally's service image: every role, chosen by the command.
# Build: install everything (the prepare script builds the page with Vite).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY gen ./gen
COPY proto ./proto
COPY src ./src
RUN npm install --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY gen ./gen
COPY proto ./proto
COPY src ./src
# Node's compile cache, filled here with every module the service loads
# (src/cli/tally.js says why): no container loads Node's TypeScript stripper.
ENV NODE_COMPILE_CACHE=/app/.compile-cache
RUN node src/cli/tally.js serve --help > /dev/null
EXPOSE 8080
ENTRYPOINT ["node", "--max-semi-space-size=8", "--heap-growing-percent=50", "--no-compact", "src/cli/tally.js"]
CMD ["serve", "--role", "all"]
