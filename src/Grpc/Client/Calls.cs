using System.Runtime.CompilerServices;

namespace ChatServices.Grpc.Client;

/// <summary>What every call exposes besides its messages.</summary>
internal interface IClientCallState
{
    Task<Metadata> ResponseHeadersAsync { get; }

    Status GetStatus();

    Metadata GetTrailers();

    void Dispose();
}

/// <summary>What every call kind has: response headers, and once it has finished, status and trailers.
/// Disposing an unfinished call cancels it.</summary>
public abstract class AsyncCall : IDisposable
{
    private readonly IClientCallState _state;

    private protected AsyncCall(IClientCallState state) => _state = state;

    public Task<Metadata> ResponseHeadersAsync => _state.ResponseHeadersAsync;

    /// <summary>The final status; only once the call has finished.</summary>
    public Status GetStatus() => _state.GetStatus();

    /// <summary>The trailing metadata; only once the call has finished.</summary>
    public Metadata GetTrailers() => _state.GetTrailers();

    public void Dispose() => _state.Dispose();
}

/// <summary>A unary call: await it (or <see cref="ResponseAsync"/>) for the response. Failures throw
/// <see cref="RpcException"/>.</summary>
public sealed class AsyncUnaryCall<TResponse> : AsyncCall
{
    internal AsyncUnaryCall(Task<TResponse> responseAsync, IClientCallState state)
        : base(state) => ResponseAsync = responseAsync;

    public Task<TResponse> ResponseAsync { get; }

    public TaskAwaiter<TResponse> GetAwaiter() => ResponseAsync.GetAwaiter();
}

/// <summary>A server-streaming call: read <see cref="ResponseStream"/> to its end.</summary>
public sealed class AsyncServerStreamingCall<TResponse> : AsyncCall
{
    internal AsyncServerStreamingCall(IAsyncStreamReader<TResponse> responseStream, IClientCallState state)
        : base(state) => ResponseStream = responseStream;

    public IAsyncStreamReader<TResponse> ResponseStream { get; }
}

/// <summary>A client-streaming call: write requests to <see cref="RequestStream"/>, complete it, then await
/// <see cref="ResponseAsync"/>.</summary>
public sealed class AsyncClientStreamingCall<TRequest, TResponse> : AsyncCall
{
    internal AsyncClientStreamingCall(IClientStreamWriter<TRequest> requestStream, Task<TResponse> responseAsync, IClientCallState state)
        : base(state)
    {
        RequestStream = requestStream;
        ResponseAsync = responseAsync;
    }

    public IClientStreamWriter<TRequest> RequestStream { get; }

    public Task<TResponse> ResponseAsync { get; }

    public TaskAwaiter<TResponse> GetAwaiter() => ResponseAsync.GetAwaiter();
}

/// <summary>A bidirectional call: requests and responses flow independently.</summary>
public sealed class AsyncDuplexStreamingCall<TRequest, TResponse> : AsyncCall
{
    internal AsyncDuplexStreamingCall(IClientStreamWriter<TRequest> requestStream, IAsyncStreamReader<TResponse> responseStream, IClientCallState state)
        : base(state)
    {
        RequestStream = requestStream;
        ResponseStream = responseStream;
    }

    public IClientStreamWriter<TRequest> RequestStream { get; }

    public IAsyncStreamReader<TResponse> ResponseStream { get; }
}
