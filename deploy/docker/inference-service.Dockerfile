# syntax=docker/dockerfile:1
# InferenceService on CPU: gRPC over cleartext HTTP/2 on 50052, HTTP/1.1 management (/metrics, /healthz, /readyz) on 9052, ONNX Runtime's CPU
# execution provider. Build from the repository root (or run deploy/build-images.sh):
#   docker build -f deploy/docker/inference-service.Dockerfile -t registry.example.com/chatservices/inference-service:0.1.0 .
# The model is not in the image: it is mounted at run time (Inference__ModelPath).
#
# ONNX Runtime (its C# API sources and libonnxruntime.so) comes from the npm package com.github.asus4.onnxruntime,
# which src/OnnxRuntime compiles at build time. The image build installs it with `npm ci` from a lock file of its
# own (deploy/docker/onnxruntime-cpu, same version and integrity hash as the repository's package-lock.json)
# rather than copying node_modules from the build context: the context stays small and machine-independent,
# the download is verified against the lock, and this layer is cached until the lock changes. The repository's
# full lock would pull about 1.4 GB of test-only packages.

ARG DOTNET_VERSION=10.0
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS onnxruntime
WORKDIR /npm
COPY deploy/docker/onnxruntime-cpu/package.json deploy/docker/onnxruntime-cpu/package-lock.json ./
RUN --mount=type=cache,id=chatservices-npm,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
COPY . .
COPY --from=onnxruntime /npm/node_modules ./node_modules
RUN --mount=type=cache,id=chatservices-nuget,target=/root/.nuget/packages \
    dotnet publish src/InferenceService/InferenceService.csproj -c Release -o /app -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}
WORKDIR /app
# Includes libonnxruntime.so and libonnxruntime_providers_shared.so beside the assemblies.
COPY --from=build /app ./
# appsettings.json binds loopback for local runs; in a container the service listens on all interfaces.
# HTTP_PORTS (8080 in the .NET images) is cleared: the Kestrel endpoints set here are the only bindings.
ENV Kestrel__Endpoints__Grpc__Url=http://0.0.0.0:50052 \
    Kestrel__Endpoints__Management__Url=http://0.0.0.0:9052 \
    Kestrel__Endpoints__Management__Protocols=Http1 \
    Inference__ExecutionProvider=cpu \
    ASPNETCORE_HTTP_PORTS=""
USER $APP_UID
EXPOSE 50052 9052
ENTRYPOINT ["dotnet", "InferenceService.dll"]
