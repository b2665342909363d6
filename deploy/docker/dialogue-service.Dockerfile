# syntax=docker/dockerfile:1
# DialogueService: gRPC over cleartext HTTP/2 on 50051, plus the HTTP/1.1 management endpoint on 9051
# (/metrics for Prometheus, /healthz and /readyz for kubelet probes). Build from the repository root (or run deploy/build-images.sh):
#   docker build -f deploy/docker/dialogue-service.Dockerfile -t registry.example.com/chatservices/dialogue-service:0.1.0 .
# Runs as the non-root user `app` (UID 1654); writes nothing outside /tmp. The tokenizer comes from the model
# volume mounted at run time, not from the image.

ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=chatservices-nuget,target=/root/.nuget/packages \
    dotnet publish src/DialogueService/DialogueService.csproj -c Release -o /app -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}
WORKDIR /app
COPY --from=build /app ./
# appsettings.json binds loopback for local runs; in a container the service listens on all interfaces.
# HTTP_PORTS (8080 in the .NET images) is cleared: the Kestrel endpoints set here are the only bindings.
ENV Kestrel__Endpoints__Grpc__Url=http://0.0.0.0:50051 \
    Kestrel__Endpoints__Management__Url=http://0.0.0.0:9051 \
    Kestrel__Endpoints__Management__Protocols=Http1 \
    ASPNETCORE_HTTP_PORTS=""
USER $APP_UID
EXPOSE 50051 9051
ENTRYPOINT ["dotnet", "DialogueService.dll"]
