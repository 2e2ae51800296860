# Tally's service image: every role, chosen by the command.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY gen ./gen
COPY proto ./proto
COPY src ./src
EXPOSE 8080
ENTRYPOINT ["node", "src/cli/main.ts"]
CMD ["serve", "--role", "all"]
