using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using ChatServices.DialogueService.Chat;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
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

    /// <summary>DialogueService's own credential (an API key with role <c>service</c>, from a secret) sent on every
    /// call; none on the loopback default, where InferenceService admits unauthenticated loopback callers.</summary>
    public string? ApiKey { get; set; }

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
/// Generates through InferenceService replicas over gRPC (chat.v1.Inference/Generate) on one grpc-dotnet channel
/// with client-side load balancing: <see cref="ReplicaResolverFactory"/> resolves the replicas (DNS re-resolution of
/// headless Services), <see cref="ReplicaBalancerFactory"/> picks one per generation with
/// <see cref="InferenceEndpointPicker"/> (least outstanding, conversation affinity) among those whose connection is
/// ready and whose circuit is not open.
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
public sealed class InferenceGenerationBackend : IGenerationBackend, IDisposable
{
    private readonly InferenceClientOptions _options;
    private readonly InferenceEndpointPicker _picker;
    private readonly ReplicaAttempts _attempts = new();
    private readonly ReplicaBalancerFactory _balancer;
    private readonly GrpcChannel _channel;
    private readonly Protos.Chat.V1.Inference.InferenceClient _client;
    private readonly ResiliencePipeline _retry;
    private readonly ConcurrentDictionary<string, ReplicaBreaker> _breakers = new();
    private readonly ILogger<InferenceGenerationBackend> _logger;
    private readonly IHttpContextAccessor? _serverCall;

    public InferenceGenerationBackend(IOptions<InferenceClientOptions> options, ILogger<InferenceGenerationBackend> logger,
        ILoggerFactory? loggerFactory = null, IHttpContextAccessor? serverCall = null, IConfiguration? configuration = null)
    {
        _options = options.Value;
        _logger = logger;
        _serverCall = serverCall;
        var configured = _options.Endpoints.Select(e => new Uri(e, UriKind.Absolute)).ToArray();
        if (configured.Length == 0) throw new InvalidOperationException("Dialogue:Inference:Endpoints lists no InferenceService address.");
        var schemes = configured.Select(u => u.Scheme).Distinct().ToArray();
        if (schemes.Length != 1 || schemes[0] is not ("http" or "https"))
            throw new InvalidOperationException("Dialogue:Inference:Endpoints must all be http:// (cleartext HTTP/2) or all https:// addresses.");

        _picker = new InferenceEndpointPicker(configured, _options.AffinitySlack);
        _balancer = new ReplicaBalancerFactory(_picker, _attempts, IsUsable);
        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(new ReplicaResolverFactory(new InferenceEndpointResolver(configured, _picker), _picker, _options.ResolveInterval));
        services.AddSingleton<LoadBalancerFactory>(_balancer);
        if (loggerFactory is not null) services.AddSingleton(loggerFactory);
        _channel = GrpcChannels.ForAddress($"{ReplicaResolverFactory.Scheme}:///inference", o =>
        {
            o.ServiceProvider = services.BuildServiceProvider();
            o.Credentials = schemes[0] == "https" ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure;
            o.ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new LoadBalancingConfig(ReplicaBalancerFactory.PolicyName) } };
        }, configuration is null ? null : TlsOptions.From(configuration));
        _client = new Protos.Chat.V1.Inference.InferenceClient(_channel.WithCredential(_options.ApiKey));
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
                var attempt = new ReplicaAttempt(affinityKey, tried);
                try
                {
                    var started = await StartAsync(attempt, request, ct);
                    await RecordAsync(started.Endpoint, null);
                    return started;
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.ResourceExhausted or StatusCode.Internal)
                {
                    if (attempt.Chosen is { } endpoint)
                    {
                        tried.Add(endpoint);
                        // A full replica is busy, not broken: it does not count against its circuit.
                        if (e.StatusCode != StatusCode.ResourceExhausted) await RecordAsync(endpoint, e);
                    }
                    _logger.LogWarning("Generation could not start on {Endpoint}: {Status}", attempt.Chosen?.ToString() ?? "no replica", e.StatusCode);
                    throw new ReplicaAttemptFailed(e);
                }
            }, cancellationToken);
        }
        catch (ReplicaAttemptFailed failed)
        {
            throw failed.Error;
        }
    }

    /// <summary>
    /// Starts the generation on the replica the channel's picker chooses for <paramref name="attempt"/> and waits for
    /// its first message, which must come within the first-token timeout.
    /// </summary>
    private async ValueTask<Started> StartAsync(ReplicaAttempt attempt, GenerateRequest request, CancellationToken cancellationToken)
    {
        var (id, registration) = _attempts.Register(attempt);
        using var _ = registration;
        var call = _client.Generate(request, new Metadata { { ReplicaAttempt.Header, id } }, InheritedDeadline(), cancellationToken);
        try
        {
            using var firstToken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            firstToken.CancelAfter(_options.FirstTokenTimeout);
            bool any;
            try
            {
                any = await call.ResponseStream.MoveNext(firstToken.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled }
                                      && !cancellationToken.IsCancellationRequested)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, $"InferenceService replica {attempt.Chosen} sent no token within {_options.FirstTokenTimeout.TotalSeconds:0} s."));
            }
            if (!any) throw new RpcException(new Status(StatusCode.Internal, "InferenceService ended the generation without a result."));
            return new Started(attempt.Chosen!, call, call.ResponseStream.Current, attempt.Outstanding!);
        }
        catch
        {
            call.Dispose();
            attempt.Outstanding?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The deadline of the gRPC call this generation serves (DialogueService's Chat), passed on to InferenceService as
    /// its own, as grpc-dotnet's call-context propagation does: the replica then stops at the caller's deadline even
    /// if the cancellation in between is lost. Null outside a gRPC call or without a deadline.
    /// </summary>
    private DateTime? InheritedDeadline() =>
        _serverCall?.HttpContext?.Features.Get<IServerCallContextFeature>()?.ServerCallContext.Deadline is { } deadline
        && deadline != DateTime.MaxValue
            ? deadline
            : null;

    /// <summary>Feeds an attempt's outcome to its replica's circuit breaker (null: it started).</summary>
    private async ValueTask RecordAsync(InferenceEndpoint endpoint, RpcException? failure)
    {
        try
        {
            await BreakerFor(endpoint).Pipeline.ExecuteAsync(static (error, _) => error is null ? default : ValueTask.FromException(error), failure);
        }
        catch (Exception e) when (e == failure || e is BrokenCircuitException)
        {
            // The outcome is recorded; the failure itself is the caller's to handle.
        }
    }

    private bool IsUsable(InferenceEndpoint endpoint) =>
        !_breakers.TryGetValue(endpoint.AddressKey, out var breaker) || breaker.State.CircuitState != CircuitState.Open;

    private ReplicaBreaker BreakerFor(InferenceEndpoint endpoint) =>
        _breakers.GetOrAdd(endpoint.AddressKey, _ => new ReplicaBreaker(_options));

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
        if (r.Constraint is not null) request.Constraint = r.Constraint;
        request.PromptTokenIds.AddRange(r.PromptTokenIds);
        request.StopTokenIds.AddRange(r.StopTokenIds);
        return request;
    }

    /// <summary>Connects to every resolved replica and waits until <paramref name="count"/> of them are ready.</summary>
    internal async Task WaitForReadyReplicasAsync(int count, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        await _channel.ConnectAsync(deadline.Token);
        while (_balancer.ReadyReplicas < count) await Task.Delay(10, deadline.Token);
    }

    public void Dispose() => _channel.Dispose();

    /// <summary>One replica's circuit breaker.</summary>
    private sealed class ReplicaBreaker
    {
        public ReplicaBreaker(InferenceClientOptions options)
        {
            Pipeline = new ResiliencePipelineBuilder()
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

        public ResiliencePipeline Pipeline { get; }
        public CircuitBreakerStateProvider State { get; } = new();
    }
}
