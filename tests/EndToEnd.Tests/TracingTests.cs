using System.Net.Http.Json;
using ChatServices.EndToEnd.Tests.Infrastructure;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// OpenTelemetry across the services: one chat request through the Gateway yields one trace, with spans from all
/// three services, exported over OTLP to a receiver the test runs.
/// </summary>
public sealed class TracingTests
{
    [Fact]
    public async Task One_chat_request_is_one_trace_with_spans_from_all_three_services()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var system = await ChatSystem.StartAsync(extraEnvironment: receiver.ExporterEnvironment);

        using var http = new HttpClient { BaseAddress = system.Gateway.Address };
        using var response = await http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "model",
            messages = new[] { new { role = "user", content = "Trace me." } },
            max_tokens = 4,
        });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());

        // The Gateway's server span for the request is the root of the trace.
        ReceivedSpan? root = null;
        IReadOnlyList<ReceivedSpan> trace = [];
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            root = receiver.Spans.FirstOrDefault(s => s.Service == "gateway" && s.Name == "POST /v1/chat/completions" && s.ParentSpanId.Trim('0').Length == 0);
            if (root is not null)
            {
                trace = receiver.Spans.Where(s => s.TraceId == root.TraceId).ToList();
                if (new[] { "gateway", "dialogue-service", "inference-service" }.All(svc => trace.Any(s => s.Service == svc)) &&
                    trace.Any(s => s.Name == "chat") && trace.Any(s => s.Name == "inference.decode")) break;
            }
            await Task.Delay(200);
        }

        Assert.True(root is not null, "no root span from the gateway; received:\n" +
            string.Join("\n", receiver.Spans.Take(50).Select(s => $"{s.Service} {s.Scope} {s.Name} {s.TraceId} {s.ParentSpanId}")) + "\n" + system.Logs);
        var described = string.Join("\n", trace.Select(s => $"{s.Service} {s.Scope} {s.Name} {s.SpanId} <- {s.ParentSpanId}"));
        Assert.Contains(trace, s => s.Service == "dialogue-service" && s.Name == "chat.v1.Dialogue/Chat" && s.Attributes.GetValueOrDefault("rpc.system") == "grpc");
        Assert.Contains(trace, s => s.Service == "dialogue-service" && s.Name == "chat");
        var generate = Assert.Single(trace, s => s.Service == "inference-service" && s.Name == "chat.v1.Inference/Generate");
        // The engine's phases of the request, under its gRPC span.
        foreach (var phase in new[] { "inference.queue", "inference.prefill", "inference.decode" })
            Assert.Contains(trace, s => s.Service == "inference-service" && s.Name == phase && s.ParentSpanId == generate.SpanId);
        Assert.Equal("4", trace.Single(s => s.Name == "inference.decode").Attributes["gen_ai.usage.output_tokens"]);
        // Every span but the root has its parent in the same trace: the context crossed each hop.
        var ids = trace.Select(s => s.SpanId).ToHashSet();
        Assert.All(trace.Where(s => s != root), s => Assert.True(ids.Contains(s.ParentSpanId), $"{s.Service} {s.Name} has no parent in the trace:\n{described}"));
    }
}
