using ChatServices.ServiceDefaults;
using Grpc.AspNetCore.Server;

namespace ChatServices.Grpc.Tests.Infrastructure;

/// <summary>
/// The gRPC server options every ChatServices service ships with (mirrors AddGrpcServiceDefaults in
/// src/ServiceDefaults; point this at it once it exists): 4 MiB messages both ways, gzip replies when configured,
/// corrupt gzip requests answered INTERNAL (<see cref="GrpcGzipCompression"/>), no exception text in statuses. The tests configure AddGrpc with exactly this, so they prove what ships.
/// </summary>
internal static class GrpcServerDefaults
{
    public const int MaxMessageSize = 4 * 1024 * 1024;

    public static void Apply(GrpcServiceOptions options, string? responseCompressionAlgorithm = null)
    {
        options.MaxReceiveMessageSize = MaxMessageSize;
        options.MaxSendMessageSize = MaxMessageSize;
        options.ResponseCompressionAlgorithm = responseCompressionAlgorithm;
        options.EnableDetailedErrors = false;
        options.CompressionProviders = [new GrpcGzipCompression()];
    }
}
