using System.Threading.Channels;
using ChatServices.ServiceDefaults;
using Microsoft.Extensions.Hosting;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ChatServices.Grpc.HealthChecks;

/// <summary>
/// The serving status the health service reports, per service name ("" = the whole server). A service changes
/// its own with <see cref="SetStatus"/> at run time. When <see cref="Readiness"/> is registered, it overrides:
/// while the process is not ready, every known service reports NOT_SERVING. When the host starts stopping,
/// every service turns NOT_SERVING and every Watch stream ends after saying so, so that open watches do not
/// hold up a graceful shutdown.
/// Invariant: every watcher is sent each change of the effective status of the service it watches.
/// </summary>
public sealed class HealthStatusRegistry
{
    private readonly Readiness? _readiness;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ServingStatus> _statuses = new(StringComparer.Ordinal) { [""] = ServingStatus.Serving };
    private readonly List<Watcher> _watchers = [];
    private bool _shutDown;

    public HealthStatusRegistry(Readiness? readiness = null, IHostApplicationLifetime? lifetime = null)
    {
        _readiness = readiness;
        if (_readiness is not null)
        {
            _readiness.Changed += _ => NotifyAll();
        }

        lifetime?.ApplicationStopping.Register(Shutdown);
    }

    /// <summary>Every service NOT_SERVING from now on; open watches receive that and end.</summary>
    public void Shutdown()
    {
        Watcher[] watchers;
        lock (_lock)
        {
            _shutDown = true;
            watchers = [.. _watchers];
            _watchers.Clear();
        }

        foreach (var watcher in watchers)
        {
            Notify(watcher);
            watcher.Channel.Writer.TryComplete();
        }
    }

    /// <summary>Sets the status of one service ("" for the server as a whole) and notifies its watchers.</summary>
    public void SetStatus(string service, ServingStatus status)
    {
        lock (_lock)
        {
            _statuses[service] = status;
        }

        NotifyAll();
    }

    /// <summary>Registers a service as SERVING unless it already has a status.</summary>
    public void AddService(string service)
    {
        lock (_lock)
        {
            if (!_statuses.TryAdd(service, ServingStatus.Serving))
            {
                return;
            }
        }

        NotifyAll();
    }

    /// <summary>The effective status; null for a service the registry does not know.</summary>
    public ServingStatus? GetStatus(string service)
    {
        lock (_lock)
        {
            if (!_statuses.TryGetValue(service, out var status))
            {
                return null;
            }

            return _shutDown || _readiness is { IsReady: false } ? ServingStatus.NotServing : status;
        }
    }

    /// <summary>A stream of the effective status of <paramref name="service"/>: the current one first, then
    /// each change (SERVICE_UNKNOWN while unknown). Only the latest undelivered status is kept.</summary>
    internal ChannelReader<ServingStatus> Watch(string service, CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<ServingStatus>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
        var watcher = new Watcher(service, channel);
        lock (_lock)
        {
            if (!_shutDown)
            {
                _watchers.Add(watcher);
            }
        }

        cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                _watchers.Remove(watcher);
            }

            channel.Writer.TryComplete();
        });
        Notify(watcher);
        if (_shutDown)
        {
            channel.Writer.TryComplete();
        }

        return channel.Reader;
    }

    private void NotifyAll()
    {
        Watcher[] watchers;
        lock (_lock)
        {
            watchers = [.. _watchers];
        }

        foreach (var watcher in watchers)
        {
            Notify(watcher);
        }
    }

    private void Notify(Watcher watcher)
    {
        var status = GetStatus(watcher.Service) ?? ServingStatus.ServiceUnknown;
        lock (watcher)
        {
            if (watcher.LastSent == status)
            {
                return;
            }

            watcher.LastSent = status;
            watcher.Channel.Writer.TryWrite(status);
        }
    }

    private sealed class Watcher(string service, Channel<ServingStatus> channel)
    {
        public string Service { get; } = service;
        public Channel<ServingStatus> Channel { get; } = channel;
        public ServingStatus? LastSent { get; set; }
    }
}
