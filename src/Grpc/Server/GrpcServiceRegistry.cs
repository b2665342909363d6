using Google.Protobuf.Reflection;

namespace ChatServices.Grpc.Server;

/// <summary>The services this server maps, with their descriptors: what server reflection lists and describes.</summary>
public sealed class GrpcServiceRegistry
{
    private readonly List<(string Name, ServiceDescriptor? Descriptor)> _services = [];
    private readonly Lock _lock = new();

    internal bool UnimplementedMapped { get; set; }

    public IReadOnlyList<string> ServiceNames
    {
        get
        {
            lock (_lock)
            {
                return _services.Select(s => s.Name).ToArray();
            }
        }
    }

    public IReadOnlyList<ServiceDescriptor> Descriptors
    {
        get
        {
            lock (_lock)
            {
                return _services.Where(s => s.Descriptor is not null).Select(s => s.Descriptor!).ToArray();
            }
        }
    }

    internal void Add(string name, ServiceDescriptor? descriptor)
    {
        lock (_lock)
        {
            if (!_services.Any(s => s.Name == name))
            {
                _services.Add((name, descriptor));
            }
        }
    }
}
