using ChatServices.Grpc.Server;
using Grpc.Health.V1;

namespace ChatServices.Grpc.HealthChecks;

/// <summary>
/// <c>grpc.health.v1.Health</c>: Check answers the current status (NOT_FOUND for an unknown service); Watch
/// streams it and every change until the client cancels.
/// </summary>
public sealed class HealthService(HealthStatusRegistry registry) : global::Grpc.Health.V1.Health.HealthBase
{
    public override Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context)
    {
        var status = registry.GetStatus(request.Service)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"Unknown service '{request.Service}'."));
        return Task.FromResult(new HealthCheckResponse { Status = status });
    }

    public override async Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responseStream, ServerCallContext context)
    {
        var updates = registry.Watch(request.Service, context.CancellationToken);
        try
        {
            await foreach (var status in updates.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(new HealthCheckResponse { Status = status }).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The client ended the watch: the normal way a Watch ends.
        }
    }
}
