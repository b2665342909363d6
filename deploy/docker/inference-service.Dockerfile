# syntax=docker/dockerfile:1
# InferenceService on CPU: gRPC over cleartext HTTP/2 on 50052, HTTP/1.1 management (/metrics, /healthz, /readyz) on 9052, ONNX Runtime's CPU
# execution provider. Build from the repository root (or run deploy/build-images.sh):
#   docker build -f deploy/docker/inference-service.Dockerfile -t registry.example.com/chatservices/inference-service:0.1.0 .
# The model is not in the image: it is mounted at run time (Inference__ModelPath).
#
# ONNX Runtime comes from NuGet (Microsoft.ML.OnnxRuntime, CPU, version in Directory.Packages.props): the publish
# for linux-x64 places libonnxruntime.so and libonnxruntime_providers_shared.so beside the assemblies, and the
# final image is only that publish output.

ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
# The whole context (see /.dockerignore: no bin/, obj/, node_modules, tests): new shared projects need no edit here.
COPY . .
RUN --mount=type=cache,id=chatservices-nuget,target=/root/.nuget/packages \
    dotnet publish src/InferenceService/InferenceService.csproj -c Release -o /app -r linux-x64 --self-contained false -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}
WORKDIR /app
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
