namespace ChatServices.Grpc.Client;

/// <summary>Per-call options: request metadata, deadline (UTC; sent as <c>grpc-timeout</c> and enforced
/// locally) and cancellation.</summary>
public readonly record struct CallOptions(Metadata? Headers = null, DateTime? Deadline = null, CancellationToken CancellationToken = default)
{
    public CallOptions WithDeadline(DateTime deadline) => this with { Deadline = deadline };

    public CallOptions WithTimeout(TimeSpan timeout) => this with { Deadline = DateTime.UtcNow + timeout };

    public CallOptions WithCancellationToken(CancellationToken cancellationToken) => this with { CancellationToken = cancellationToken };

    public CallOptions WithHeaders(Metadata headers) => this with { Headers = headers };
}
