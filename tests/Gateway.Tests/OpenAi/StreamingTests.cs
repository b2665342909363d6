using System.Net;
using System.Text.Json;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.Tests.Shared;

namespace ChatServices.Gateway.Tests.OpenAi;

/// <summary>Chat completions as Server-Sent Events, read raw off the socket: every event, in order.</summary>
[Collection(GatewayCollection.Name)]
public sealed class StreamingTests(GatewayFixture fixture)
{
    private const string Model = ScriptedDialogueService.ModelId;

    [Fact]
    public async Task A_stream_is_role_chunk_then_content_deltas_then_finish_chunk_then_usage_then_DONE()
    {
        using var client = fixture.CreateClient();
        using var response = await client.PostStreamingAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"stream this"}],"stream":true,"stream_options":{"include_usage":true} }""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.ContentType()?.MediaType);
        Assert.Equal("no-cache", response.Headers.CacheControl?.ToString());
        var events = await ServerSentEventReader.ReadAllAsync(response);

        Assert.All(events, e => Assert.Null(e.Name));
        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.SkipLast(1).Select(e => e.Json).ToArray();
        var id = chunks[0].GetProperty("id").GetString();
        Assert.StartsWith("chatcmpl-", id);
        Assert.All(chunks, c =>
        {
            Assert.Equal(id, c.GetProperty("id").GetString());
            Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString());
            Assert.Equal(Model, c.GetProperty("model").GetString());
            Assert.True(c.GetProperty("created").GetInt64() > 0);
        });

        // First: the role, with empty content.
        var first = chunks[0].GetProperty("choices")[0];
        Assert.Equal("assistant", first.GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("", first.GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("finish_reason").ValueKind);

        // Then one chunk per delta; with include_usage every chunk carries "usage": null until the last.
        var deltas = chunks[1..^2];
        Assert.Equal(["Hello! ", "You ", "said: ", "stream ", "this"], deltas.Select(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()));
        Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
        Assert.All(deltas, c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));

        // Then the finish chunk with an empty delta.
        var finish = chunks[^2].GetProperty("choices")[0];
        Assert.Equal("stop", finish.GetProperty("finish_reason").GetString());
        Assert.Empty(finish.GetProperty("delta").EnumerateObject());

        // Then usage with no choices.
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(5, usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() + 5, usage.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Without_include_usage_no_chunk_carries_usage()
    {
        using var client = fixture.CreateClient();
        using var response = await client.PostStreamingAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"no usage"}],"stream":true,"n":2}""");
        var events = await ServerSentEventReader.ReadAllAsync(response);
        var chunks = events.SkipLast(1).Select(e => e.Json).ToArray();
        Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out _)));
        Assert.All(chunks, c => Assert.Equal(1, c.GetProperty("choices").GetArrayLength()));
        // Both choices open with a role chunk and close with a finish chunk.
        Assert.Equal(2, chunks.Count(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("role", out _)));
        var finished = chunks.Where(c => c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind == JsonValueKind.String)
            .Select(c => c.GetProperty("choices")[0].GetProperty("index").GetInt32()).ToArray();
        Assert.Equal([0, 1], finished);
        var second = string.Concat(chunks.Select(c => c.GetProperty("choices")[0]).Where(c => c.GetProperty("index").GetInt32() == 1)
            .Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal("[1] Hello! You said: no usage", second);
    }

    [Fact]
    public async Task Streamed_logprobs_ride_on_their_delta()
    {
        using var client = fixture.CreateClient();
        using var response = await client.PostStreamingAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"lp"}],"stream":true,"logprobs":true,"top_logprobs":1}""");
        var events = await ServerSentEventReader.ReadAllAsync(response);
        var delta = events[1].Json.GetProperty("choices")[0];
        var token = Assert.Single(delta.GetProperty("logprobs").GetProperty("content").EnumerateArray());
        Assert.Equal("Hello! ", token.GetProperty("token").GetString());
        Assert.Single(token.GetProperty("top_logprobs").EnumerateArray());
    }

    [Fact]
    public async Task An_upstream_failure_mid_stream_is_sent_as_an_error_event()
    {
        using var client = fixture.CreateClient();
        using var response = await client.PostStreamingAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"fail:midstream"}],"stream":true}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ServerSentEventReader.ReadAllAsync(response);
        Assert.Equal(1 + 3 + 1, events.Count); // role, three deltas, the error
        var error = events[^1].Json.GetProperty("error");
        Assert.Contains("the model runner failed", error.GetProperty("message").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_cancels_the_upstream_generation()
    {
        var text = "slow disconnect " + Guid.NewGuid().ToString("N");
        var cancelled = fixture.Upstream.CancellationOf(text);
        using var client = fixture.CreateClient();
        using (var response = await client.PostStreamingAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"{{text}}"}],"stream":true}"""))
        {
            var read = 0;
            await foreach (var e in ServerSentEventReader.ReadAsync(response))
            {
                if (++read == 4) break; // the role chunk and three words
            }
            Assert.True(fixture.Upstream.Running > 0);
        } // disposing the response closes the connection mid-stream

        var finished = await Task.WhenAny(cancelled.Task, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.Same(cancelled.Task, finished);
        // The generation no longer counts against capacity.
        await Wait.UntilAsync(() => fixture.Upstream.Running == 0, TimeSpan.FromSeconds(5), "the upstream generation ending");
    }

}
