# syntax=docker/dockerfile:1
# Gateway: the HTTP edge, port 8080. Build from the repository root (or run deploy/build-images.sh):
#   docker build -f deploy/docker/gateway.Dockerfile -t registry.example.com/chatservices/gateway:0.1.0 .
# Runs as the non-root user `app` (UID 1654) of the .NET images and writes nothing outside /tmp, so the pod
# mounts its root filesystem read-only (deploy/k8s/base/gateway.yaml).

ARG DOTNET_VERSION=10.0

# The web page's libraries (marked, DOMPurify, highlight.js), pinned by package-lock.json; the Gateway build copies
# them from node_modules into wwwroot/vendor.
FROM node:22-bookworm-slim AS web
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
# The whole context (see /.dockerignore: no bin/, obj/, node_modules, tests): new shared projects need no edit here.
COPY . .
COPY --from=web /src/node_modules ./node_modules
RUN --mount=type=cache,id=chatservices-nuget,target=/root/.nuget/packages \
    dotnet publish src/Gateway/Gateway.csproj -c Release -o /app -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}
WORKDIR /app
COPY --from=build /app ./
# appsettings.json binds loopback for local runs; in a container the service listens on all interfaces.
# HTTP_PORTS (8080 in the .NET images) is cleared: the Kestrel endpoints set here are the only bindings.
ENV Kestrel__Endpoints__Http__Url=http://0.0.0.0:8080 \
    ASPNETCORE_HTTP_PORTS=""
USER $APP_UID
EXPOSE 8080
ENTRYPOINT ["dotnet", "Gateway.dll"]
