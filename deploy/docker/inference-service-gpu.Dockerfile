# syntax=docker/dockerfile:1
# InferenceService on NVIDIA GPUs: the same service as inference-service.Dockerfile, on a CUDA 13 + cuDNN 9
# runtime image, with ONNX Runtime's CUDA execution provider. Build from the repository root (or run
# deploy/build-images.sh):
#   docker build -f deploy/docker/inference-service-gpu.Dockerfile -t registry.example.com/chatservices/inference-service-gpu:0.1.0 .
# Needs on the node: an NVIDIA driver that supports CUDA 13 (R580 or newer) and the NVIDIA container toolkit /
# device plugin; the pod asks for nvidia.com/gpu (deploy/k8s/overlays/gpu).
#
# libonnxruntime_providers_cuda.so (npm com.github.asus4.onnxruntime.linux-x64-gpu, ORT 1.29.0, CUDA 13) links
# libcudart.so.13, libcublas.so.13, libcublasLt.so.13 and libcurand.so.10 and loads libcudnn.so.9 and libcufft at
# run time: all of them are in the cudnn-runtime image. ONNX Runtime loads the provider from the directory of
# libonnxruntime.so, so it is placed beside it in /app.

ARG DOTNET_VERSION=10.0
ARG NODE_VERSION=22
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM node:${NODE_VERSION}-bookworm-slim AS onnxruntime
WORKDIR /npm
# ONNX Runtime and its CUDA provider (about 230 MB more; the CPU image never downloads it), from a lock of their
# own whose core package has the same version and integrity hash as the repository's package-lock.json.
COPY deploy/docker/onnxruntime-gpu/package.json deploy/docker/onnxruntime-gpu/package-lock.json ./
RUN --mount=type=cache,id=chatservices-npm,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
COPY . .
COPY --from=onnxruntime /npm/node_modules ./node_modules
RUN --mount=type=cache,id=chatservices-nuget,target=/root/.nuget/packages \
    dotnet publish src/InferenceService/InferenceService.csproj -c Release -o /app -p:UseAppHost=false

# The ASP.NET Core runtime, taken from the official image (Ubuntu 24.04, like the CUDA image).
FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}-noble AS dotnet

FROM ${CUDA_IMAGE}
# What the .NET runtime needs beyond the CUDA image (the list of the official runtime-deps image).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libicu74 libssl3t64 tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1654 app \
    && useradd --no-log-init --uid 1654 --gid 1654 --create-home app
COPY --from=dotnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
WORKDIR /app
COPY --from=build /app ./
# The provider and the provider bridge built with it (it replaces the CPU package's copy of the bridge).
COPY --from=onnxruntime /npm/node_modules/com.github.asus4.onnxruntime.linux-x64-gpu/Plugins/Linux/x64/libonnxruntime_providers_cuda.so \
     /npm/node_modules/com.github.asus4.onnxruntime.linux-x64-gpu/Plugins/Linux/x64/libonnxruntime_providers_shared.so \
     ./
ENV APP_UID=1654 \
    DOTNET_ROOT=/usr/share/dotnet \
    DOTNET_RUNNING_IN_CONTAINER=true \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    Kestrel__Endpoints__Grpc__Url=http://0.0.0.0:50052 \
    Kestrel__Endpoints__Management__Url=http://0.0.0.0:9052 \
    Kestrel__Endpoints__Management__Protocols=Http1 \
    Inference__ExecutionProvider=cuda
USER 1654
EXPOSE 50052 9052
ENTRYPOINT ["dotnet", "InferenceService.dll"]
