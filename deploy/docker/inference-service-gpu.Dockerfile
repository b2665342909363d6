# syntax=docker/dockerfile:1
# InferenceService on NVIDIA GPUs: the same service as inference-service.Dockerfile, on a CUDA 13 + cuDNN 9
# runtime image, with ONNX Runtime's CUDA execution provider. Build from the repository root (or run
# deploy/build-images.sh):
#   docker build -f deploy/docker/inference-service-gpu.Dockerfile -t registry.example.com/chatservices/inference-service-gpu:0.1.0 .
# Needs on the node: an NVIDIA driver that supports CUDA 13 (R580 or newer) and the NVIDIA container toolkit /
# device plugin; the pod asks for nvidia.com/gpu (deploy/k8s/overlays/gpu).
#
# ONNX Runtime comes from NuGet Microsoft.ML.OnnxRuntime.Gpu.Linux (version in Directory.Packages.props), selected
# by -p:OnnxRuntimeExecutionProvider=cuda; the publish places libonnxruntime.so and its providers beside the
# assemblies, where ONNX Runtime looks for them. libonnxruntime_providers_cuda.so links libcudart.so.13,
# libcublas.so.13, libcublasLt.so.13 and libcurand.so.10 and loads libcudnn.so.9 and libcufft at run time: all of
# them are in the cudnn-runtime image. scripts/check-cuda-build.sh (run by test.sh) builds the same way and fails
# if the provider's CUDA major and CUDA_IMAGE's ever differ.

ARG DOTNET_VERSION=10.0
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
# The whole context (see /.dockerignore: no bin/, obj/, node_modules, tests).
COPY . .
RUN --mount=type=cache,id=chatservices-nuget,target=/root/.nuget/packages \
    dotnet publish src/InferenceService/InferenceService.csproj -c Release -o /app -r linux-x64 --self-contained false \
      -p:UseAppHost=false -p:OnnxRuntimeExecutionProvider=cuda

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
