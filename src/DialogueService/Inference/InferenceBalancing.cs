using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.Client.Balancer;

namespace ChatServices.DialogueService.Inference;

/// <summary>
/// One generation attempt's routing: the conversation it belongs to and the replicas already tried for the same
/// request go in; the replica the channel's picker chose comes out. It travels to the picker through the
/// <see cref="Header"/> request header, which the picker removes before the request leaves the process.
/// </summary>
internal sealed class ReplicaAttempt(string? affinityKey, IReadOnlyCollection<InferenceEndpoint> tried)
{
    public const string Header = "chatservices-replica-attempt";

    private readonly Lock _choosing = new();

    public string? AffinityKey { get; } = affinityKey;
    public IReadOnlyCollection<InferenceEndpoint> Tried { get; } = tried;

    /// <summary>The replica the picker sent the call to; null until it picked one.</summary>
    public InferenceEndpoint? Chosen { get; private set; }

    /// <summary>The generation counts as outstanding on <see cref="Chosen"/> from the pick until this is disposed
    /// (when the generation ends). The channel's own call tracking ends when response headers arrive, too early
    /// for a stream that lasts the whole reply.</summary>
    public IDisposable? Outstanding { get; private set; }

    /// <summary>Records the picker's choice (a call picked again, after its first choice's connection changed
    /// state, releases the first).</summary>
    public void Choose(InferenceEndpoint endpoint)
    {
        var lease = endpoint.Track();
        lock (_choosing)
        {
            Outstanding?.Dispose();
            Chosen = endpoint;
            Outstanding = lease;
        }
    }
}

/// <summary>The attempts whose call has not yet been picked, by the id their header carries.</summary>
internal sealed class ReplicaAttempts
{
    private readonly ConcurrentDictionary<long, ReplicaAttempt> _pending = new();
    private long _next;

    /// <summary>Registers <paramref name="attempt"/>; the returned id goes into the call's header and is released
    /// when the handle is disposed.</summary>
    public (string Id, IDisposable Registration) Register(ReplicaAttempt attempt)
    {
        var id = Interlocked.Increment(ref _next);
        _pending[id] = attempt;
        return (id.ToString(System.Globalization.CultureInfo.InvariantCulture), new Release(this, id));
    }

    public ReplicaAttempt? Find(string? id) =>
        long.TryParse(id, out var key) && _pending.TryGetValue(key, out var attempt) ? attempt : null;

    private sealed class Release(ReplicaAttempts owner, long id) : IDisposable
    {
        public void Dispose() => owner._pending.TryRemove(id, out _);
    }
}

/// <summary>
/// The channel's name resolution (grpc-dotnet <see cref="PollingResolver"/>, scheme <see cref="Scheme"/>): the
/// configured InferenceService addresses, host names resolved through DNS (a Kubernetes headless Service: one
/// address per ready pod), refreshed every <c>ResolveInterval</c> and whenever a replica's connection fails.
/// Invariant: the channel's addresses are <see cref="InferenceEndpointPicker.Endpoints"/>, which the refresh updates
/// (and leaves as they were when nothing resolves: a DNS hiccup must not take every replica away), so the picker
/// and the channel always know the same replicas.
/// </summary>
internal sealed class ReplicaResolverFactory(InferenceEndpointResolver resolver, InferenceEndpointPicker picker, TimeSpan interval) : ResolverFactory
{
    public const string Scheme = "chatservices-inference";

    public override string Name => Scheme;

    public override Resolver Create(ResolverOptions options) => new ReplicaResolver(resolver, picker, interval, options.LoggerFactory);

    private sealed class ReplicaResolver(InferenceEndpointResolver resolver, InferenceEndpointPicker picker, TimeSpan interval, ILoggerFactory loggerFactory)
        : PollingResolver(loggerFactory)
    {
        private readonly ILogger _logger = loggerFactory.CreateLogger<ReplicaResolver>();
        private Timer? _timer;

        protected override void OnStarted()
        {
            _timer = new Timer(_ => RefreshOnTimer(), null, interval, interval);
        }

        // A tick can race the channel's disposal; an exception escaping a timer callback would end the process.
        private void RefreshOnTimer()
        {
            try
            {
                Refresh();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        protected override async Task ResolveAsync(CancellationToken cancellationToken)
        {
            if ((await resolver.RefreshAsync(cancellationToken)).Count == 0)
                _logger.LogWarning("No InferenceService address resolved; keeping the last known replicas");
            Listener(ResolverResult.ForResult([.. picker.Endpoints.Select(e => new BalancerAddress(e.Address.DnsSafeHost, e.Address.Port))]));
        }

        protected override void Dispose(bool disposing)
        {
            _timer?.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// The channel's load-balancing policy (grpc-dotnet <see cref="SubchannelsLoadBalancer"/>, name
/// <see cref="PolicyName"/>): among the replicas whose connection is ready and whose circuit is not open, the one
/// <see cref="InferenceEndpointPicker"/> chooses — least outstanding generations, with conversation affinity — and
/// not one the same request already tried, while another is left.
/// </summary>
internal sealed class ReplicaBalancerFactory(InferenceEndpointPicker picker, ReplicaAttempts attempts, Func<InferenceEndpoint, bool> isUsable)
    : LoadBalancerFactory
{
    public const string PolicyName = "chatservices_least_outstanding_affinity";

    private readonly InferenceEndpointPicker _picker = picker;
    private readonly ReplicaAttempts _attempts = attempts;
    private readonly Func<InferenceEndpoint, bool> _isUsable = isUsable;
    private volatile int _ready;

    public override string Name => PolicyName;

    /// <summary>How many replicas have a ready connection.</summary>
    public int ReadyReplicas => _ready;

    public override LoadBalancer Create(LoadBalancerOptions options) => new Balancer(this, options);

    private sealed class Balancer(ReplicaBalancerFactory factory, LoadBalancerOptions options)
        : SubchannelsLoadBalancer(options.Controller, options.LoggerFactory)
    {
        protected override SubchannelPicker CreatePicker(IReadOnlyList<Subchannel> readySubchannels)
        {
            factory._ready = readySubchannels.Count;
            return new Picker(factory, readySubchannels);
        }
    }

    private sealed class Picker : SubchannelPicker
    {
        private readonly ReplicaBalancerFactory _factory;
        private readonly Dictionary<string, Subchannel> _ready = [];

        public Picker(ReplicaBalancerFactory factory, IReadOnlyList<Subchannel> readySubchannels)
        {
            _factory = factory;
            foreach (var subchannel in readySubchannels)
                if (subchannel.CurrentAddress is { } address) _ready[Key(address.EndPoint.Host, address.EndPoint.Port)] = subchannel;
        }

        public override PickResult Pick(PickContext context)
        {
            ReplicaAttempt? attempt = null;
            if (context.Request is { } request && request.Headers.TryGetValues(ReplicaAttempt.Header, out var values))
            {
                attempt = _factory._attempts.Find(values.FirstOrDefault());
                request.Headers.Remove(ReplicaAttempt.Header);
            }

            var picker = _factory._picker;
            var endpoint = picker.Pick(attempt?.AffinityKey, IsCandidate, attempt?.Tried) ?? picker.Pick(attempt?.AffinityKey, IsCandidate);
            if (endpoint is null || !_ready.TryGetValue(Key(endpoint), out var subchannel))
                return PickResult.ForFailure(new Status(StatusCode.Unavailable, "No InferenceService replica is available."));

            attempt?.Choose(endpoint);
            return PickResult.ForSubchannel(subchannel);
        }

        private bool IsCandidate(InferenceEndpoint endpoint) => _ready.ContainsKey(Key(endpoint)) && _factory._isUsable(endpoint);
    }

    private static string Key(InferenceEndpoint endpoint) => Key(endpoint.Address.DnsSafeHost, endpoint.Address.Port);

    private static string Key(string host, int port) => host + ":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
