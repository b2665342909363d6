using Google.Protobuf;
using Google.Protobuf.Reflection;
using Microsoft.Extensions.Logging;

namespace ChatServices.Grpc.Server;

/// <summary>
/// Collects a service's methods and their handlers. Generated service bases call it from their static
/// <c>BindService(ServiceBinder)</c>; <c>MapGrpcService&lt;T&gt;()</c> turns what it collects into endpoints.
/// <typeparamref name="TService"/> in each Add method is the generated base class: the handler casts the
/// per-call instance to it once.
/// </summary>
public sealed class ServiceBinder
{
    private readonly ServiceActivator _activator;
    private readonly GrpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly List<(string Path, ServerCallHandler Handler)> _methods = [];

    internal ServiceBinder(ServiceActivator activator, GrpcServerOptions options, ILogger logger)
    {
        _activator = activator;
        _options = options;
        _logger = logger;
    }

    internal IReadOnlyList<(string Path, ServerCallHandler Handler)> Methods => _methods;

    internal string? ServiceName { get; private set; }

    internal ServiceDescriptor? Descriptor { get; private set; }

    /// <summary>The protobuf descriptor of the service, which server reflection describes.</summary>
    public void SetDescriptor(string serviceName, ServiceDescriptor? descriptor)
    {
        ServiceName = serviceName;
        Descriptor = descriptor;
    }

    public void AddUnary<TService, TRequest, TResponse>(Method<TRequest, TResponse> method, Func<TService, TRequest, ServerCallContext, Task<TResponse>> handler)
        where TService : class where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse> =>
        _methods.Add((method.FullName, new UnaryServerCallHandler<TService, TRequest, TResponse>(method, handler, _activator, _options, _logger)));

    public void AddServerStreaming<TService, TRequest, TResponse>(Method<TRequest, TResponse> method, Func<TService, TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task> handler)
        where TService : class where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse> =>
        _methods.Add((method.FullName, new ServerStreamingServerCallHandler<TService, TRequest, TResponse>(method, handler, _activator, _options, _logger)));

    public void AddClientStreaming<TService, TRequest, TResponse>(Method<TRequest, TResponse> method, Func<TService, IAsyncStreamReader<TRequest>, ServerCallContext, Task<TResponse>> handler)
        where TService : class where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse> =>
        _methods.Add((method.FullName, new ClientStreamingServerCallHandler<TService, TRequest, TResponse>(method, handler, _activator, _options, _logger)));

    public void AddDuplexStreaming<TService, TRequest, TResponse>(Method<TRequest, TResponse> method, Func<TService, IAsyncStreamReader<TRequest>, IServerStreamWriter<TResponse>, ServerCallContext, Task> handler)
        where TService : class where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse> =>
        _methods.Add((method.FullName, new DuplexStreamingServerCallHandler<TService, TRequest, TResponse>(method, handler, _activator, _options, _logger)));
}
