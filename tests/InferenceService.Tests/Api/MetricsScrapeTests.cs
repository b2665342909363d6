using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Grpc.Core;
using Grpc.Net.Client;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.InferenceService.Tests.Api;

/// <summary>
/// The InferenceService's metrics as Prometheus scrapes them: <c>GET /metrics</c> over HTTP/1.1 on the management
/// endpoint of the service wired as Program.cs wires it, after real generations over gRPC.
/// </summary>
/// <remarks>
/// The SDK listens to meters by name, so an engine of another test class running at the same time would add to
/// these counts: the class runs alone (<see cref="MetricsScrapeCollection"/>), after the others have disposed theirs.
/// </remarks>
[Collection(nameof(MetricsScrapeCollection))]
public sealed partial class MetricsScrapeTests(InferenceServiceFixture fixture) : IClassFixture<InferenceServiceFixture>
{
    [Fact]
    public async Task After_a_generation_the_scrape_has_queue_depth_time_to_first_token_and_token_counts()
    {
        for (var i = 0; i < 2; i++)
        {
            var request = new GenerateRequest { Sampling = new SamplingParams { Temperature = 0 }, MaxNewTokens = 6, IgnoreEos = true };
            request.PromptTokenIds.AddRange(TestModel.Prompt(10, 40));
            using var call = fixture.Client.Generate(request);
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        }

        var text = await ScrapeAsync();

        // Gauges are present (their value is whatever the engine's load is now: idle, so 0).
        Assert.Contains("# TYPE chatservices_inference_queue_depth gauge", text);
        Assert.Equal(0, Value(text, "chatservices_inference_queue_depth"));
        Assert.Contains("# TYPE chatservices_inference_sequences_running gauge", text);
        Assert.True(Value(text, "chatservices_inference_kv_cache_slots_total") > 0, text);
        Assert.Equal(0, Value(text, "chatservices_inference_kv_cache_usage")); // unit "1": no suffix from this exporter
        // Histograms in seconds, with the token-latency buckets.
        Assert.Contains("# TYPE gen_ai_server_time_to_first_token_seconds histogram", text);
        Assert.Equal(2, Value(text, "gen_ai_server_time_to_first_token_seconds_count"));
        Assert.True(Value(text, "gen_ai_server_time_to_first_token_seconds_sum") > 0, text);
        Assert.Matches(@"(?m)^gen_ai_server_time_to_first_token_seconds_bucket\{[^}]*le=""0\.005""", text);
        Assert.Equal(2, Value(text, "gen_ai_server_time_per_output_token_seconds_count"));
        Assert.Equal(2, Value(text, "gen_ai_server_request_duration_seconds_count"));
        Assert.Equal(10, Value(text, "chatservices_inference_inter_token_latency_seconds_count")); // 5 gaps each
        // Token counts by type, and the prefix cache's reuse of the repeated prompt.
        Assert.Equal(20, Value(text, "chatservices_inference_tokens_total", @"gen_ai_token_type=""input"""));
        Assert.Equal(12, Value(text, "chatservices_inference_tokens_total", @"gen_ai_token_type=""output"""));
        Assert.Equal(2, Value(text, "chatservices_inference_prefix_cache_lookups_total"));
        Assert.Equal(1, Value(text, "chatservices_inference_prefix_cache_hits_total"));
    }

    [Fact]
    public async Task The_management_endpoint_answers_health_over_http1()
    {
        using var client = new HttpClient { BaseAddress = fixture.ManagementAddress };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
    }

    private async Task<string> ScrapeAsync()
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(fixture.ManagementAddress, "/metrics"))
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>The value of the one sample of <paramref name="name"/> whose labels contain <paramref name="label"/>.</summary>
    private static double Value(string text, string name, string label = "")
    {
        var samples = Sample().Matches(text).Where(m => m.Groups["name"].Value == name && m.Groups["labels"].Value.Contains(label, StringComparison.Ordinal)).ToList();
        Assert.True(samples.Count == 1, $"{samples.Count} samples of {name}{{{label}}} in:\n{text}");
        return double.Parse(samples[0].Groups["value"].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"(?m)^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?<labels>[^}]*)\})? (?<value>\S+)")]
    private static partial Regex Sample();
}

[CollectionDefinition(nameof(MetricsScrapeCollection), DisableParallelization = true)]
public sealed class MetricsScrapeCollection;
