# Not built in CI (no Docker engine there); kept for docker-compose.yml.
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0 FHIR_DATA_DIR=/data/fhir AUDIT_SPOOL_DIR=/data/audit-spool
# The embedded FHIR store's data (used when FHIR_BASE_URL is unset) and the AuditEvents not yet written (with any FHIR
# server): mount a volume here or they die with the container.
VOLUME /data
EXPOSE 3000
CMD ["node", "dist/service/main.js"]
