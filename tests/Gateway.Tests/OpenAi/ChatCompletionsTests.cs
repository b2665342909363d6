using System.Net;
using System.Text.Json;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.OpenAi;

[Collection(GatewayCollection.Name)]
public sealed class ChatCompletionsTests(GatewayFixture fixture)
{
    private const string Model = ScriptedDialogueService.ModelId;

    [Fact]
    public async Task A_chat_completion_has_OpenAIs_shape_and_usage()
    {
        using var client = fixture.CreateClient();
        var response = await client.PostJsonAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi there"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.ContentType()?.MediaType);
        var body = await response.JsonAsync();
        Assert.StartsWith("chatcmpl-", body.GetProperty("id").GetString());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.InRange(body.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Assert.Equal(Model, body.GetProperty("model").GetString());
        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("Hello! You said: hi there", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);

        var usage = body.GetProperty("usage");
        var prompt = usage.GetProperty("prompt_tokens").GetInt32();
        var completion = usage.GetProperty("completion_tokens").GetInt32();
        Assert.True(prompt > 0);
        Assert.Equal(5, completion); // "Hello! ", "You ", "said: ", "hi ", "there"
        Assert.Equal(prompt + completion, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(2, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task Parameters_reach_DialogueService_as_generation_settings_with_the_key_owner()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var response = await client.PostJsonAsync("/v1/chat/completions", $$"""
            {"model":"{{Model}}","messages":[{"role":"developer","content":"rules"},{"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}]}],
             "temperature":0.3,"top_p":0.9,"max_completion_tokens":77,"stop":["END","STOP"],"seed":42,
             "presence_penalty":0.5,"frequency_penalty":-0.5,"user":"someone","metadata":{"team":"a"},"store":false,"service_tier":"auto" }
            """);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var request = fixture.Upstream.ChatRequests.Last(r => r.OwnerId == "bob");
        Assert.Equal("", request.ConversationId);
        Assert.Equal(["system", "user"], request.Messages.Select(m => m.Role));
        Assert.Equal("part one\npart two", request.Messages[1].Content);
        var settings = request.Settings;
        Assert.Equal(0.3f, settings.Temperature);
        Assert.Equal(0.9f, settings.TopP);
        Assert.Equal(77, settings.MaxTokens);
        Assert.Equal(["END", "STOP"], settings.Stop);
        Assert.Equal(42UL, settings.Seed);
        Assert.Equal(0.5f, settings.PresencePenalty);
        Assert.Equal(-0.5f, settings.FrequencyPenalty);
    }

    [Fact]
    public async Task Stop_may_be_a_single_string()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var response = await client.PostJsonAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"single stop"}],"stop":"\n\n","max_tokens":5}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var request = fixture.Upstream.ChatRequests.Last(r => r.Messages.Count > 0 && r.Messages[^1].Content == "single stop");
        Assert.Equal(["\n\n"], request.Settings.Stop);
        Assert.Equal(5, request.Settings.MaxTokens);
    }

    [Fact]
    public async Task N_choices_come_back_in_order_and_max_tokens_ends_with_length()
    {
        using var client = fixture.CreateClient();
        var response = await client.PostJsonAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"one two three four"}],"n":2,"max_tokens":3}""");
        var body = await response.JsonAsync();
        var choices = body.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal(2, choices.Length);
        Assert.Equal("Hello! You said: ", choices[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("[1] Hello! You ", choices[1].GetProperty("message").GetProperty("content").GetString());
        Assert.All(choices, c => Assert.Equal("length", c.GetProperty("finish_reason").GetString()));
        Assert.Equal(1, choices[1].GetProperty("index").GetInt32());
        Assert.Equal(6, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Logprobs_come_back_per_token_with_bytes_and_top_logprobs()
    {
        using var client = fixture.CreateClient();
        var response = await client.PostJsonAsync("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"héllo"}],"logprobs":true,"top_logprobs":2}""");
        var choice = (await response.JsonAsync()).GetProperty("choices")[0];
        var content = choice.GetProperty("logprobs").GetProperty("content").EnumerateArray().ToArray();
        Assert.Equal(4, content.Length);
        var last = content[^1];
        Assert.Equal("héllo", last.GetProperty("token").GetString());
        Assert.Equal(-0.25, last.GetProperty("logprob").GetDouble(), 3);
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes("héllo").Select(b => (int)b), last.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        var top = last.GetProperty("top_logprobs").EnumerateArray().ToArray();
        Assert.Equal(2, top.Length);
        Assert.Equal("alt1", top[1].GetProperty("token").GetString());
        Assert.True(top[1].TryGetProperty("bytes", out _));
    }

    [Fact]
    public async Task The_legacy_completions_endpoint_sends_the_raw_prompt_and_answers_text_completion()
    {
        using var client = fixture.CreateClient();
        var response = await client.PostJsonAsync("/v1/completions", $$"""{"model":"{{Model}}","prompt":"Once upon a time","max_tokens":50}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.StartsWith("cmpl-", body.GetProperty("id").GetString());
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("Hello! You said: Once upon a time", choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.True(body.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);

        var request = fixture.Upstream.ChatRequests.Last(r => r.Prompt == "Once upon a time");
        Assert.Empty(request.Messages);
        Assert.Equal(50, request.Settings.MaxTokens);
    }

    [Fact]
    public async Task The_legacy_completions_endpoint_streams_text_completion_chunks()
    {
        using var client = fixture.CreateClient();
        using var response = await client.PostStreamingAsync("/v1/completions",
            $$"""{"model":"{{Model}}","prompt":"stream me","stream":true,"stream_options":{"include_usage":true} }""");
        var events = await ServerSentEventReader.ReadAllAsync(response);
        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.SkipLast(1).Select(e => e.Json).ToArray();
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        var text = string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal("Hello! You said: stream me", text);
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.True(chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);
    }
}
