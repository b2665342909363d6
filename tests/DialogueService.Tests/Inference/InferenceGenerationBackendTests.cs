using System.Net;
using ChatServices.DialogueService.Chat;
using ChatServices.DialogueService.Inference;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using ChatServices.Protos.Chat.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ChatServices.DialogueService.Tests.Inference;

/// <summary>
/// The InferenceService client against real gRPC servers on loopback (grpc-dotnet on Kestrel) that
/// play scripted InferenceService replicas: healthy, down, or dying mid-stream.
/// </summary>
public sealed class InferenceGenerationBackendTests : IAsyncLifetime
{
    private readonly List<Replica> _replicas = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var r in _replicas) await r.DisposeAsync();
    }

    [Fact]
    public async Task A_replica_that_is_down_before_the_first_token_is_retried_on_another()
    {
        var down = await StartAsync(Behaviour.Unavailable);
        var healthy = await StartAsync(Behaviour.Healthy);
        using var backend = await BackendAsync(down, healthy);

        var events = await CollectAsync(backend, Request());

        Assert.Equal([5, 6, 7], events.OfType<TokenGenerated>().Select(t => t.TokenId));
        Assert.Equal(GenerationFinishReason.Stop, Assert.Single(events.OfType<ChoiceFinished>()).Reason);
        Assert.Equal(1, down.Calls);
        Assert.Equal(1, healthy.Calls);
    }

    [Fact]
    public async Task A_failure_after_the_first_token_reaches_the_caller_and_is_not_retried()
    {
        var dying = await StartAsync(Behaviour.DiesAfterFirstToken);
        var healthy = await StartAsync(Behaviour.Healthy);
        using var backend = await BackendAsync(dying, healthy);

        var received = new List<GenerationEvent>();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var e in backend.GenerateAsync(Request(), CancellationToken.None)) received.Add(e);
        });

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.StartsWith($"InferenceService replica {dying.Address.GetLeftPart(UriPartial.Authority)} failed mid-reply: ", error.Status.Detail);
        Assert.Single(received.OfType<TokenGenerated>());
        Assert.Equal(0, healthy.Calls);
    }

    [Fact]
    public async Task A_replica_that_keeps_failing_is_left_out_once_its_circuit_opens()
    {
        var down = await StartAsync(Behaviour.Unavailable);
        var healthy = await StartAsync(Behaviour.Healthy);
        using var backend = await BackendAsync(down, healthy);

        for (var i = 0; i < 10; i++) await CollectAsync(backend, Request());

        Assert.Equal(10, healthy.Calls);
        Assert.InRange(down.Calls, 2, 3); // the breaker's minimum throughput, then open for the rest
    }

    [Fact]
    public async Task With_every_replica_down_the_caller_gets_unavailable()
    {
        var a = await StartAsync(Behaviour.Unavailable);
        var b = await StartAsync(Behaviour.Unavailable);
        using var backend = await BackendAsync(a, b);

        var error = await Assert.ThrowsAsync<RpcException>(() => CollectAsync(backend, Request()));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task Leaving_the_stream_early_cancels_the_generation_on_the_replica()
    {
        var slow = await StartAsync(Behaviour.Endless);
        using var backend = await BackendAsync(slow);

        await foreach (var e in backend.GenerateAsync(Request(), CancellationToken.None))
            if (e is TokenGenerated) break;

        Assert.True(await slow.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, backend.Endpoints[0].Outstanding);
    }

    [Fact]
    public async Task A_conversation_goes_back_to_the_replica_that_served_it()
    {
        var a = await StartAsync(Behaviour.Healthy);
        var b = await StartAsync(Behaviour.Healthy);
        using var backend = await BackendAsync(a, b);

        for (var i = 0; i < 6; i++)
            await CollectAsync(backend, new GenerationRequest([1, 2, 3], new GenerationParameters { MaxNewTokens = 3 }, [2], "conversation-7"));

        Assert.Equal(6, a.Calls + b.Calls);
        Assert.Contains(6, new[] { a.Calls, b.Calls });
    }

    [Fact]
    public async Task A_generation_without_a_conversation_goes_to_the_replica_with_the_fewest_outstanding()
    {
        var busy = await StartAsync(Behaviour.Endless);
        var idle = await StartAsync(Behaviour.Healthy);
        using var backend = await BackendAsync(busy, idle);

        // Both are idle: the first generation goes to the first replica and stays there, streaming.
        using var cts = new CancellationTokenSource();
        await using var streaming = backend.GenerateAsync(Request(), cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await streaming.MoveNextAsync());
        Assert.Equal(1, backend.Endpoints[0].Outstanding);

        await CollectAsync(backend, Request());

        Assert.Equal(1, busy.Calls);
        Assert.Equal(1, idle.Calls);
        await cts.CancelAsync();
    }

    [Fact]
    public async Task Sampling_settings_and_stop_ids_reach_the_replica()
    {
        var healthy = await StartAsync(Behaviour.Healthy);
        using var backend = await BackendAsync(healthy);
        await CollectAsync(backend, new GenerationRequest([1, 2, 3],
            new GenerationParameters { MaxNewTokens = 9, Temperature = 0.5f, TopP = 0.9f, TopK = 40, Seed = 7, N = 1 }, [2, 128009], "conv"));

        // The routing header the balancer reads never leaves the process.
        Assert.DoesNotContain(healthy.LastHeaders!, h => h.Key.StartsWith("chatservices-", StringComparison.Ordinal));
        var seen = healthy.LastRequest!;
        Assert.Equal([1, 2, 3], seen.PromptTokenIds);
        Assert.Equal(9u, seen.MaxNewTokens);
        Assert.Equal(0.5f, seen.Sampling.Temperature);
        Assert.Equal(0.9f, seen.Sampling.TopP);
        Assert.Equal(40u, seen.Sampling.TopK);
        Assert.Equal(7ul, seen.Sampling.Seed);
        Assert.Equal([2, 128009], seen.StopTokenIds);
    }

    [Fact]
    public async Task The_deadline_of_the_call_being_served_is_passed_on_to_the_replica()
    {
        var healthy = await StartAsync(Behaviour.Healthy);
        var serving = new HttpContextAccessor { HttpContext = new DefaultHttpContext() };
        using var backend = new InferenceGenerationBackend(Options(healthy), NullLogger<InferenceGenerationBackend>.Instance, null, serving);
        await backend.WaitForReadyReplicasAsync(1, TimeSpan.FromSeconds(10));

        // Outside a gRPC call: no deadline.
        await CollectAsync(backend, Request());
        Assert.Equal(DateTime.MaxValue, healthy.LastDeadline);

        // Serving a Chat call with a deadline: the replica gets the same one (grpc-timeout is whole milliseconds).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        serving.HttpContext.Features.Set<IServerCallContextFeature>(new ServingCall(deadline));
        await CollectAsync(backend, Request());
        Assert.InRange(healthy.LastDeadline, deadline.AddSeconds(-2), deadline.AddSeconds(1));
    }

    /// <summary>The server call a generation serves, as grpc-dotnet exposes it on the HttpContext (only its deadline).</summary>
    private sealed class ServingCall(DateTime deadline) : ServerCallContext, IServerCallContextFeature
    {
        public ServerCallContext ServerCallContext => this;
        protected override DateTime DeadlineCore => deadline;
        protected override string MethodCore => "/chat.v1.Dialogue/Chat";
        protected override string HostCore => "localhost";
        protected override string PeerCore => "ipv4:127.0.0.1:1";
        protected override Metadata RequestHeadersCore { get; } = [];
        protected override CancellationToken CancellationTokenCore => CancellationToken.None;
        protected override Metadata ResponseTrailersCore { get; } = [];
        protected override Status StatusCore { get; set; }
        protected override WriteOptions? WriteOptionsCore { get; set; }
        protected override AuthContext AuthContextCore => new(null, []);
        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();
        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }

    private static GenerationRequest Request() => new([1, 2, 3], new GenerationParameters { MaxNewTokens = 3 }, [2], null);

    private static async Task<List<GenerationEvent>> CollectAsync(InferenceGenerationBackend backend, GenerationRequest request)
    {
        var list = new List<GenerationEvent>();
        await foreach (var e in backend.GenerateAsync(request, CancellationToken.None)) list.Add(e);
        return list;
    }

    /// <summary>A backend over <paramref name="replicas"/>, once its channel has a ready connection to each of them
    /// (so that which replica a test's first call goes to does not depend on which connection came up first).</summary>
    private static async Task<InferenceGenerationBackend> BackendAsync(params Replica[] replicas)
    {
        var backend = Backend(replicas);
        await backend.WaitForReadyReplicasAsync(replicas.Length, TimeSpan.FromSeconds(10));
        return backend;
    }

    private static InferenceGenerationBackend Backend(params Replica[] replicas) => new(Options(replicas), NullLogger<InferenceGenerationBackend>.Instance);

    private static IOptions<InferenceClientOptions> Options(params Replica[] replicas) => Microsoft.Extensions.Options.Options.Create(new InferenceClientOptions
    {
        Endpoints = [.. replicas.Select(r => r.Address.ToString())],
        RetryBaseDelay = TimeSpan.FromMilliseconds(1),
        MaxRetries = 2,
        BreakerMinimumCalls = 2,
        BreakerOpenDuration = TimeSpan.FromMinutes(1),
        FirstTokenTimeout = TimeSpan.FromSeconds(20),
    });

    private async Task<Replica> StartAsync(Behaviour behaviour)
    {
        var replica = await Replica.StartAsync(behaviour);
        _replicas.Add(replica);
        return replica;
    }

    public enum Behaviour { Healthy, Unavailable, DiesAfterFirstToken, Endless }

    public sealed class Replica : Protos.Chat.V1.Inference.InferenceBase, IAsyncDisposable
    {
        private WebApplication? _app;
        private int _calls;

        private Replica(Behaviour behaviour) => Mode = behaviour;

        public Behaviour Mode { get; }
        public int Calls => Volatile.Read(ref _calls);
        public GenerateRequest? LastRequest { get; private set; }
        public Metadata? LastHeaders { get; private set; }
        public DateTime LastDeadline { get; private set; }
        public TaskCompletionSource<bool> Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Uri Address { get; private set; } = null!;

        public static async Task<Replica> StartAsync(Behaviour behaviour)
        {
            var replica = new Replica(behaviour);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Configuration.Sources.Clear(); // not the service's appsettings.json (its fixed ports) beside the tests
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(replica);
            replica._app = builder.Build();
            replica._app.MapGrpcService<Replica>();
            await replica._app.StartAsync();
            replica.Address = new Uri(replica._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            return replica;
        }

        public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
        {
            Interlocked.Increment(ref _calls);
            LastRequest = request;
            LastHeaders = context.RequestHeaders;
            LastDeadline = context.Deadline;
            if (Mode == Behaviour.Unavailable) throw new RpcException(new Status(StatusCode.Unavailable, "replica is down"));
            context.CancellationToken.Register(() => Cancelled.TrySetResult(true));
            var result = new SequenceResult { Index = 0, FinishReason = FinishReason.Stop };
            for (var i = 0; Mode == Behaviour.Endless || i < 3; i++)
            {
                var token = new GeneratedToken { SequenceIndex = 0, TokenId = 5 + i };
                await responseStream.WriteAsync(new GenerateResponse { Step = new TokenStep { Tokens = { token } } }, context.CancellationToken);
                result.TokenIds.Add(token.TokenId);
                if (Mode == Behaviour.DiesAfterFirstToken) throw new RpcException(new Status(StatusCode.Unavailable, "replica died"));
                if (Mode == Behaviour.Endless) await Task.Delay(20, context.CancellationToken);
            }
            await responseStream.WriteAsync(new GenerateResponse
            {
                Result = new GenerateResult { Sequences = { result }, Usage = new Usage { PromptTokens = 3, CompletionTokens = 3 } },
            });
        }

        public async ValueTask DisposeAsync()
        {
            if (_app is null) return;
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _app.StopAsync(stop.Token);
            await _app.DisposeAsync();
        }
    }
}
