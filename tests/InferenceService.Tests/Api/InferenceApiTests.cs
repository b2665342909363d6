using ChatServices.Tests.Shared;
using Grpc.Core;
using Grpc.Net.Client;
using ChatServices.InferenceService.Api;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using ChatServices.ServiceDefaults.Identity;
using Grpc.Health.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.InferenceService.Tests.Api;

/// <summary>
/// The InferenceService as clients see it: Kestrel on 127.0.0.1 (a port the OS picks), HTTP/2, the service wired as
/// Program.cs wires it, called through the project's gRPC client over a real connection. Callers authenticate with
/// API keys from configuration; <see cref="Client"/> is DialogueService's kind of caller (role <c>service</c>).
/// </summary>
public class InferenceServiceFixture : IAsyncLifetime
{
    public const string ServiceKey = "csk_inference-tests-service-key-0000000000000000";
    public const string UserKey = "csk_inference-tests-user-key-000000000000000000000";
    public const string AdminKey = "csk_inference-tests-admin-key-00000000000000000000";

    private readonly TestModel _model = new();
    private WebApplication _app = null!;

    public GrpcChannel Channel { get; private set; } = null!;
    public Uri Address { get; private set; } = null!;

    /// <summary>The HTTP/1.1 management endpoint (<c>/metrics</c>, <c>/healthz</c>, <c>/readyz</c>).</summary>
    public Uri ManagementAddress { get; private set; } = null!;
    public Inference.InferenceClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Inference:ModelPath"] = _model.Path,
            ["Inference:KvCacheBudgetMiB"] = "2",
            ["Inference:MaxBatchSize"] = "8",
            ["Inference:PrefillChunkTokens"] = "32",
            ["Inference:StepTokenBudget"] = "64",
            ["Inference:IntraOpThreads"] = "1",
            // The service's appsettings.json (copied beside the tests) names its default port: a port the OS picks instead.
            ["Kestrel:Endpoints:Grpc:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Grpc:Protocols"] = "Http2",
            ["Kestrel:Endpoints:Management:Url"] = "http://127.0.0.1:0",
            ["Identity:ApiKeys:0:Hash"] = ApiKeyFormat.Hash(ServiceKey),
            ["Identity:ApiKeys:0:Owner"] = "dialogue-service",
            ["Identity:ApiKeys:0:Role"] = Roles.Service,
            ["Identity:ApiKeys:1:Hash"] = ApiKeyFormat.Hash(UserKey),
            ["Identity:ApiKeys:1:Owner"] = "tenant",
            ["Identity:ApiKeys:1:Role"] = Roles.User,
            ["Identity:ApiKeys:2:Hash"] = ApiKeyFormat.Hash(AdminKey),
            ["Identity:ApiKeys:2:Owner"] = "operator",
            ["Identity:ApiKeys:2:Role"] = Roles.Admin,
        });
        builder.Configuration.AddInMemoryCollection(ExtraSettings);
        builder.AddServiceDefaults();
        builder.AddGrpcServiceDefaults();
        builder.AddInferenceEngine();
        _app = builder.Build();
        _app.MapDefaultEndpoints();
        _app.MapGrpcService<InferenceApi>();
        _app.MapGrpcServiceDefaults();
        await _app.StartAsync();
        var readiness = _app.Services.GetRequiredService<Readiness>();
        await Wait.UntilAsync(() => readiness.IsReady, TimeSpan.FromSeconds(30), "the model loading (readiness)");
        ManagementAddress = _app.Services.GetRequiredService<ManagementEndpoint>().Address!;
        Address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Select(a => new Uri(a)).Single(a => a.Port != ManagementAddress.Port);
        Channel = GrpcChannel.ForAddress(Address);
        Client = ClientWith(ServiceKey);
    }

    /// <summary>Settings a derived fixture adds to (or changes in) the service's configuration.</summary>
    protected virtual IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>();

    /// <summary>A client whose calls carry <paramref name="credential"/> (none when null).</summary>
    public Inference.InferenceClient ClientWith(string? credential) => new(Channel.WithCredential(credential));

    public virtual async Task DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _model.Dispose();
    }
}

public sealed class InferenceApiTests(InferenceServiceFixture fixture) : IClassFixture<InferenceServiceFixture>
{
    private static GenerateRequest Greedy(int[] prompt, uint maxNewTokens)
    {
        var request = new GenerateRequest { Sampling = new SamplingParams { Temperature = 0 }, MaxNewTokens = maxNewTokens, IgnoreEos = true };
        request.PromptTokenIds.AddRange(prompt);
        return request;
    }

    private async Task<(List<TokenStep> Steps, GenerateResult Result)> Collect(GenerateRequest request, CancellationToken cancellation = default)
    {
        using var call = fixture.Client.Generate(request, cancellationToken: cancellation);
        var steps = new List<TokenStep>();
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            Assert.Null(result); // nothing after the result
            if (message.KindCase == GenerateResponse.KindOneofCase.Step) steps.Add(message.Step);
            else result = message.Result;
        }
        return (steps, result ?? throw new InvalidOperationException("no result"));
    }

    [Fact]
    public async Task Concurrent_clients_each_receive_their_tokens_step_by_step_then_a_result()
    {
        var prompts = Enumerable.Range(0, 6).Select(i => TestModel.Prompt(5 + 9 * i, 200 + i)).ToArray();
        var alone = new List<int[]>();
        foreach (var p in prompts) alone.Add([.. (await Collect(Greedy(p, 12))).Result.Sequences[0].TokenIds]);

        var together = await Task.WhenAll(prompts.Select(p => Collect(Greedy(p, 12))));
        for (var i = 0; i < prompts.Length; i++)
        {
            var (steps, result) = together[i];
            Assert.Equal(12, steps.Count);
            Assert.Equal(steps.Select(s => s.Tokens.Single().TokenId), result.Sequences[0].TokenIds);
            Assert.Equal(alone[i], result.Sequences[0].TokenIds);
            Assert.Equal(FinishReason.Length, result.Sequences[0].FinishReason);
            Assert.Equal((uint)prompts[i].Length, result.Usage.PromptTokens);
            Assert.Equal(12u, result.Usage.CompletionTokens);
        }
    }

    [Theory]
    [InlineData("sampling.temperature")]
    [InlineData("sampling.top_p")]
    [InlineData("max_new_tokens")]
    [InlineData("prompt_token_ids")]
    public async Task Invalid_parameters_fail_with_INVALID_ARGUMENT_naming_the_field(string field)
    {
        var request = Greedy(TestModel.Prompt(4), 4);
        switch (field)
        {
            case "sampling.temperature": request.Sampling.Temperature = -1; break;
            case "sampling.top_p": request.Sampling.TopP = 1.5f; break;
            case "max_new_tokens": request.MaxNewTokens = 0; break;
            case "prompt_token_ids": request.PromptTokenIds.Add(100_000); break;
        }
        var error = await Assert.ThrowsAsync<RpcException>(() => Collect(request));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith(field + ":", error.Status.Detail);
    }

    [Fact]
    public async Task An_unsupported_constraint_fails_with_INVALID_ARGUMENT_naming_the_feature()
    {
        var request = Greedy(TestModel.Prompt(4), 4);
        request.IgnoreEos = false;
        request.Constraint = new Constraint { JsonSchema = """{"type": "object", "patternProperties": {"^a": {}}}""" };
        var error = await Assert.ThrowsAsync<RpcException>(() => Collect(request));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("constraint.json_schema: keyword 'patternProperties' is not supported.", error.Status.Detail);

        // This test model folder has no tokenizer.json: the text of its tokens is unknown, so nothing can be constrained.
        request.Constraint = new Constraint { Regex = "[a-z]+" };
        error = await Assert.ThrowsAsync<RpcException>(() => Collect(request));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith("constraint: this model folder has no tokenizer.json", error.Status.Detail);
    }

    [Fact]
    public void Constraints_map_to_the_engine_field_by_field()
    {
        var request = Greedy(TestModel.Prompt(4), 4);
        request.Constraint = new Constraint { Grammar = new Grammar { Gbnf = "root ::= call" } };
        request.Constraint.Grammar.JsonSchemaRules["call"] = "{\"type\": \"integer\"}";
        var grammar = Assert.IsType<InferenceService.Engine.Constraints.GrammarConstraint>(InferenceApi.ToEngineRequest(request).Constraint);
        Assert.Equal("root ::= call", grammar.Gbnf);
        Assert.Equal("{\"type\": \"integer\"}", grammar.JsonSchemaRules["call"]);
        request.Constraint = new Constraint { JsonObject = new JsonObjectConstraint() };
        Assert.IsType<InferenceService.Engine.Constraints.JsonObjectConstraint>(InferenceApi.ToEngineRequest(request).Constraint);
        request.Constraint = new Constraint { JsonSchema = "{}" };
        Assert.Equal(new InferenceService.Engine.Constraints.JsonSchemaConstraint("{}"), InferenceApi.ToEngineRequest(request).Constraint);
        request.Constraint = new Constraint { Regex = "a|b" };
        Assert.Equal(new InferenceService.Engine.Constraints.RegexConstraint("a|b"), InferenceApi.ToEngineRequest(request).Constraint);
        request.Constraint = null;
        Assert.Null(InferenceApi.ToEngineRequest(request).Constraint);
    }

    [Fact]
    public async Task Model_info_describes_the_model_and_cancelled_calls_give_their_kv_back()
    {
        var info = await fixture.Client.GetModelInfoAsync(new GetModelInfoRequest());
        Assert.Equal(512u, info.VocabSize);
        Assert.Equal(256u, info.ContextLength);
        Assert.Equal([2], info.EosTokenIds);
        Assert.Equal("CPUExecutionProvider", info.ExecutionProvider);
        Assert.True(info.KvCache.TotalSlots >= 8);
        Assert.Equal(2u << 20, info.KvCache.CapacityBytes);

        using var cts = new CancellationTokenSource();
        using var call = fixture.Client.Generate(Greedy(TestModel.Prompt(20, 300), 230), cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        cts.Cancel();
        await Assert.ThrowsAnyAsync<Exception>(async () => { while (await call.ResponseStream.MoveNext(CancellationToken.None)) { } });
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do info = await fixture.Client.GetModelInfoAsync(new GetModelInfoRequest());
        while (info.KvCache.UsedSlots > 0 && DateTime.UtcNow < deadline);
        Assert.Equal(0u, info.KvCache.UsedSlots);
        Assert.Equal(0u, info.Running);
    }

    [Fact]
    public async Task Samples_logprobs_and_beams_come_through_the_wire()
    {
        var sampled = Greedy(TestModel.Prompt(10, 310), 6);
        sampled.Sampling = new SamplingParams { Temperature = 1, Seed = 3 };
        sampled.N = 2;
        sampled.TopLogprobs = 3;
        var (steps, result) = await Collect(sampled);
        Assert.Equal(2, result.Sequences.Count);
        Assert.All(steps.SelectMany(s => s.Tokens), t => { Assert.Equal(3, t.TopLogprobs.Count); Assert.True(t.Logprob <= 0); });

        var beams = Greedy(TestModel.Prompt(10, 311), 6);
        beams.BeamSearch = new BeamSearchParams { NumBeams = 3 };
        var (beamSteps, beamResult) = await Collect(beams);
        Assert.Empty(beamSteps);
        Assert.Equal(3, beamResult.Sequences.Count);
        Assert.True(beamResult.Sequences[0].Score >= beamResult.Sequences[2].Score);
    }

    [Fact]
    public async Task Health_is_SERVING_once_the_model_is_loaded()
    {
        var health = new Health.HealthClient(fixture.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest { Service = Inference.Descriptor.FullName })).Status);
    }
}
