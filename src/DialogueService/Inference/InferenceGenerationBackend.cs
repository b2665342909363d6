using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using ChatServices.DialogueService.Chat;
using ChatServices.Grpc;
using ChatServices.Grpc.Client;
using ChatServices.Protos.Chat.V1;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace ChatServices.DialogueService.Inference;

/// <summary>How DialogueService reaches InferenceService (configuration section <c>Dialogue:Inference</c>).</summary>
public sealed class InferenceClientOptions
{
    /// <summary>InferenceService addresses. A host name stands for every address it resolves to (a Kubernetes
    /// headless Service: one per ready pod), re-resolved every <see cref="ResolveInterval"/>.</summary>
    public List<string> Endpoints { get; set; } = ["http://127.0.0.1:50052"];

    public TimeSpan ResolveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a replica may take to send its first token before the attempt counts as failed and
    /// another replica is tried. Covers queueing and prefill.</summary>
    public TimeSpan FirstTokenTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Attempts on other replicas after the first one fails before any token arrived.</summary>
    public int MaxRetries { get; set; } = 2;

    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>A replica's circuit opens when at least this share of at least <see cref="BreakerMinimumCalls"/>
    /// calls in <see cref="BreakerSamplingDuration"/> failed, and stays open for <see cref="BreakerOpenDuration"/>.</summary>
    public double BreakerFailureRatio { get; set; } = 0.5;

    public int BreakerMinimumCalls { get; set; } = 4;
    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan BreakerOpenDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How many more outstanding generations a conversation's home replica may have than the least
    /// loaded one before the conversation goes elsewhere.</summary>
    public int AffinitySlack { get; set; } = 2;
}

/// <summary>
/// Generates through InferenceService replicas over gRPC (chat.v1.Inference/Generate), choosing a replica per
/// generation with <see cref="InferenceEndpointPicker"/>.
/// </summary>
/// <remarks>
/// Resilience (Polly), in this order:
/// <list type="bullet">
/// <item>a circuit breaker per replica: replicas whose calls keep failing (UNAVAILABLE, INTERNAL, no first token in
/// time) are left out of picking until their circuit closes again;</item>
/// <item>retry with exponential backoff and jitter on another replica — only while no token has arrived. Once the
/// first token is streamed the generation is bound to its replica: a failure after it reaches the caller (a reply
/// cannot be restarted elsewhere without showing the person text twice). A full replica (RESOURCE_EXHAUSTED) is
/// retried elsewhere too but does not count against its circuit.</item>
/// </list>
/// </remarks>
public sealed class InferenceGenerationBackend : IGenerationBackend, IHostedService, IDisposable
{
    private readonly InferenceClientOptions _options;
    private readonly InferenceEndpointPicker _picker;
    private readonly InferenceEndpointResolver _resolver;
    private readonly ResiliencePipeline _retry;
    private readonly ConcurrentDictionary<string, Replica> _replicas = new();
    private readonly ILogger<InferenceGenerationBackend> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _resolveLoop;

    public InferenceGenerationBackend(IOptions<InferenceClientOptions> options, ILogger<InferenceGenerationBackend> logger)
    {
        _options = options.Value;
        _logger = logger;
        var configured = _options.Endpoints.Select(e => new Uri(e, UriKind.Absolute)).ToArray();
        if (configured.Length == 0) throw new InvalidOperationException("Dialogue:Inference:Endpoints lists no InferenceService address.");
        _picker = new InferenceEndpointPicker(configured, _options.AffinitySlack);
        _resolver = new InferenceEndpointResolver(configured, _picker);
        _retry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<ReplicaAttemptFailed>(),
                MaxRetryAttempts = Math.Max(0, _options.MaxRetries),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = _options.RetryBaseDelay,
            })
            .Build();
    }

    public IReadOnlyList<InferenceEndpoint> Endpoints => _picker.Endpoints;

    public async IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var started = await StartOnSomeReplicaAsync(ToProto(request), request.AffinityKey, cancellationToken);
        using var call = started.Call;
        using var outstanding = started.Outstanding;

        var response = started.First;
        while (true)
        {
            switch (response.KindCase)
            {
                case GenerateResponse.KindOneofCase.Step:
                    foreach (var t in response.Step.Tokens)
                        yield return new TokenGenerated((int)t.SequenceIndex, t.TokenId,
                            request.Parameters.Logprobs ? t.Logprob : null,
                            t.TopLogprobs.Count == 0 ? null : t.TopLogprobs.Select(c => new TokenCandidate(c.TokenId, c.Logprob)).ToArray());
                    break;
                case GenerateResponse.KindOneofCase.Result:
                    foreach (var s in response.Result.Sequences)
                        yield return new ChoiceFinished((int)s.Index, s.FinishReason == Protos.Chat.V1.FinishReason.Length ? GenerationFinishReason.Length : GenerationFinishReason.Stop);
                    var usage = response.Result.Usage;
                    yield return new GenerationUsage((int)(usage?.PromptTokens ?? 0), (int)(usage?.CompletionTokens ?? 0), (int)(usage?.CachedPromptTokens ?? 0));
                    yield break;
            }
            if (!await NextAsync(started, cancellationToken))
                throw new RpcException(new Status(StatusCode.Internal, "InferenceService ended the generation without a result."));
            response = call.ResponseStream.Current;
        }
    }

    private sealed record Started(InferenceEndpoint Endpoint, AsyncServerStreamingCall<GenerateResponse> Call, GenerateResponse First, IDisposable Outstanding);

    /// <summary>
    /// Reads the next message of a generation under way. A replica that fails now has streamed tokens already, so
    /// the failure is the caller's to see (no retry), named for the tier and replica where it happened.
    /// </summary>
    private static async Task<bool> NextAsync(Started started, CancellationToken cancellationToken)
    {
        try
        {
            return await started.Call.ResponseStream.MoveNext(cancellationToken);
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested && e.StatusCode != StatusCode.Cancelled)
        {
            throw new RpcException(new Status(e.StatusCode, $"InferenceService replica {started.Endpoint} failed mid-reply: {e.Status.Detail}"), e.Trailers);
        }
    }

    /// <summary>An attempt failed before the first token; the retry strategy tries another replica.</summary>
    private sealed class ReplicaAttemptFailed(RpcException error) : Exception(error.Message, error)
    {
        public RpcException Error { get; } = error;
    }

    private async Task<Started> StartOnSomeReplicaAsync(GenerateRequest request, string? affinityKey, CancellationToken cancellationToken)
    {
        var tried = new List<InferenceEndpoint>();
        try
        {
            return await _retry.ExecuteAsync(async ct =>
            {
                var endpoint = _picker.Pick(affinityKey, IsUsable, tried) ?? _picker.Pick(affinityKey, IsUsable)
                    ?? throw new ReplicaAttemptFailed(new RpcException(new Status(StatusCode.Unavailable, "No InferenceService replica is available.")));
                tried.Add(endpoint);
                var replica = ReplicaFor(endpoint);
                try
                {
                    return await replica.Breaker.ExecuteAsync(token => StartAsync(replica, endpoint, request, token), ct);
                }
                catch (BrokenCircuitException)
                {
                    throw new ReplicaAttemptFailed(new RpcException(new Status(StatusCode.Unavailable, $"InferenceService replica {endpoint} is failing; its circuit is open.")));
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.ResourceExhausted or StatusCode.Internal)
                {
                    _logger.LogWarning("Generation could not start on {Endpoint}: {Status}", endpoint, e.StatusCode);
                    throw new ReplicaAttemptFailed(e);
                }
            }, cancellationToken);
        }
        catch (ReplicaAttemptFailed failed)
        {
            throw failed.Error;
        }
    }

    private async ValueTask<Started> StartAsync(Replica replica, InferenceEndpoint endpoint, GenerateRequest request, CancellationToken cancellationToken)
    {
        var outstanding = endpoint.Track();
        var call = replica.Client.Generate(request, cancellationToken: cancellationToken);
        try
        {
            using var firstToken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            firstToken.CancelAfter(_options.FirstTokenTimeout);
            bool any;
            try
            {
                any = await call.ResponseStream.MoveNext(firstToken.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, $"InferenceService replica {endpoint} sent no token within {_options.FirstTokenTimeout.TotalSeconds:0} s."));
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && !cancellationToken.IsCancellationRequested)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, $"InferenceService replica {endpoint} sent no token within {_options.FirstTokenTimeout.TotalSeconds:0} s."));
            }
            if (!any) throw new RpcException(new Status(StatusCode.Internal, "InferenceService ended the generation without a result."));
            return new Started(endpoint, call, call.ResponseStream.Current, outstanding);
        }
        catch
        {
            call.Dispose();
            outstanding.Dispose();
            throw;
        }
    }

    private bool IsUsable(InferenceEndpoint endpoint) =>
        !_replicas.TryGetValue(endpoint.AddressKey, out var replica) || replica.State.CircuitState != CircuitState.Open;

    private Replica ReplicaFor(InferenceEndpoint endpoint) =>
        _replicas.GetOrAdd(endpoint.AddressKey, _ => new Replica(endpoint.Address, _options));

    private static GenerateRequest ToProto(GenerationRequest r)
    {
        var p = r.Parameters;
        var request = new GenerateRequest
        {
            MaxNewTokens = (uint)p.MaxNewTokens,
            N = (uint)p.N,
            Logprobs = p.Logprobs,
            TopLogprobs = (uint)p.TopLogprobs,
            Sampling = new SamplingParams
            {
                Temperature = p.Temperature,
                TopP = p.TopP,
                TopK = (uint)p.TopK,
                MinP = p.MinP,
                RepetitionPenalty = p.RepetitionPenalty,
                PresencePenalty = p.PresencePenalty,
                FrequencyPenalty = p.FrequencyPenalty,
            },
        };
        if (p.Seed is ulong seed) request.Sampling.Seed = seed;
        request.PromptTokenIds.AddRange(r.PromptTokenIds);
        request.StopTokenIds.AddRange(r.StopTokenIds);
        return request;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _resolveLoop = Task.Run(ResolveLoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_resolveLoop is not null) await Task.WhenAny(_resolveLoop, Task.Delay(Timeout.Infinite, cancellationToken));
    }

    private async Task ResolveLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.ResolveInterval);
        try
        {
            do await RefreshReplicasAsync();
            while (await timer.WaitForNextTickAsync(_stopping.Token));
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>Re-resolves the configured names and drops the channels of replicas that went away.</summary>
    internal async Task RefreshReplicasAsync()
    {
        try
        {
            var current = await _resolver.RefreshAsync(_stopping.Token);
            if (current.Count == 0) return;
            foreach (var key in _replicas.Keys)
                if (!current.Any(u => u.GetLeftPart(UriPartial.Authority) == key) && _replicas.TryRemove(key, out var gone))
                    gone.Dispose();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogWarning(e, "Resolving InferenceService endpoints failed; keeping the last known replicas");
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        foreach (var replica in _replicas.Values) replica.Dispose();
        _stopping.Dispose();
    }

    /// <summary>One replica's channel, typed client and circuit breaker.</summary>
    private sealed class Replica : IDisposable
    {
        private readonly GrpcChannel _channel;

        public Replica(Uri address, InferenceClientOptions options)
        {
            _channel = GrpcChannel.ForAddress(address);
            Client = new Protos.Chat.V1.Inference.InferenceClient(_channel);
            Breaker = new ResiliencePipelineBuilder()
                .AddCircuitBreaker(new CircuitBreakerStrategyOptions
                {
                    FailureRatio = options.BreakerFailureRatio,
                    MinimumThroughput = Math.Max(2, options.BreakerMinimumCalls),
                    SamplingDuration = options.BreakerSamplingDuration,
                    BreakDuration = options.BreakerOpenDuration,
                    StateProvider = State,
                    ShouldHandle = new PredicateBuilder().Handle<RpcException>(e => e.StatusCode is StatusCode.Unavailable or StatusCode.Internal),
                })
                .Build();
        }

        public Protos.Chat.V1.Inference.InferenceClient Client { get; }
        public ResiliencePipeline Breaker { get; }
        public CircuitBreakerStateProvider State { get; } = new();

        public void Dispose() => _channel.Dispose();
    }
}
