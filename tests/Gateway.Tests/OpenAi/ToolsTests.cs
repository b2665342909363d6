using System.Net;
using System.Text.Json;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.Gateway.Tests.OpenAi;

/// <summary>
/// response_format, tools, tool_choice and tool messages in the OpenAI API: how they reach DialogueService, how
/// tool calls come back (JSON and streamed as OpenAI streams them), and refusals naming the param as sent.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ToolsTests(GatewayFixture fixture)
{
    private const string Model = ScriptedDialogueService.ModelId;

    private const string Tools = """
        "tools": [{"type": "function", "function": {"name": "get_forecast", "description": "Forecast.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
                  {"type": "function", "function": {"name": "get_time"}}]
        """;

    [Fact]
    public async Task Tools_tool_choice_and_response_format_reach_DialogueService()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var response = await client.PostJsonAsync("/v1/chat/completions", $$"""
            {"model": "{{Model}}", "messages": [{"role": "user", "content": "tools-auto"}], {{Tools}}, "tool_choice": "auto", "parallel_tool_calls": false,
             "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true, "schema": {"type": "object"} } } }
            """);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var request = fixture.Upstream.ChatRequests.Last(r => r.Messages.Count > 0 && r.Messages[^1].Content == "tools-auto");
        Assert.Equal(["get_forecast", "get_time"], request.Tools.Select(t => t.Name));
        Assert.Equal("""{"type": "object", "properties": {"city": {"type": "string"}}}""", request.Tools[0].Parameters);
        Assert.True(request.Tools[0].Strict);
        Assert.Equal("", request.Tools[1].Parameters);
        Assert.Equal(ToolChoice.Types.Mode.Auto, request.ToolChoice.Mode);
        Assert.False(request.ParallelToolCalls);
        Assert.Equal("""{"type": "object"}""", request.Settings.Constraint.JsonSchema);

        await client.PostJsonAsync("/v1/chat/completions", $$"""
            {"model": "{{Model}}", "messages": [{"role": "user", "content": "json-object"}], "response_format": {"type": "json_object"} }
            """);
        Assert.NotNull(fixture.Upstream.ChatRequests.Last(r => r.Messages.Count > 0 && r.Messages[^1].Content == "json-object").Settings.Constraint.JsonObject);
    }

    [Fact]
    public async Task A_forced_call_comes_back_as_message_tool_calls_with_content_null()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var body = await (await client.PostJsonAsync("/v1/chat/completions", $$"""
            {"model": "{{Model}}", "messages": [{"role": "user", "content": "Weather?"}], {{Tools}}, "tool_choice": {"type": "function", "function": {"name": "get_forecast"} } }
            """)).JsonAsync();
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
        var call = Assert.Single(message.GetProperty("tool_calls").EnumerateArray());
        Assert.Equal("""{"id":"call_abcdefghijklmnopqrstuvwx","type":"function","function":{"name":"get_forecast","arguments":"{\"city\":\"Oslo\"}"}}""", call.GetRawText());
        var request = fixture.Upstream.ChatRequests.Last(r => r.ToolChoice?.Mode == ToolChoice.Types.Mode.Function);
        Assert.Equal("get_forecast", request.ToolChoice.FunctionName);
    }

    [Fact]
    public async Task A_streamed_call_opens_with_id_type_name_and_empty_arguments_then_sends_arguments_with_the_index_only()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var response = await client.PostJsonAsync("/v1/chat/completions", $$"""
            {"model": "{{Model}}", "messages": [{"role": "user", "content": "Weather?"}], {{Tools}}, "tool_choice": "required", "stream": true}
            """);
        var deltas = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Where(e => e.StartsWith("data: {", StringComparison.Ordinal))
            .Select(e => JsonDocument.Parse(e[6..]).RootElement.GetProperty("choices")[0])
            .ToList();
        var calls = deltas.Where(d => d.GetProperty("delta").TryGetProperty("tool_calls", out _))
            .Select(d => d.GetProperty("delta").GetProperty("tool_calls").GetRawText()).ToList();
        Assert.Equal(
        [
            """[{"index":0,"id":"call_abcdefghijklmnopqrstuvwx","type":"function","function":{"name":"get_forecast","arguments":""}}]""",
            """[{"index":0,"function":{"arguments":"{\"city\":"}}]""",
            """[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]""",
        ], calls);
        Assert.Equal("tool_calls", deltas[^1].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Assistant_tool_calls_with_content_null_and_tool_messages_are_accepted()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var response = await client.PostJsonAsync("/v1/chat/completions", $$"""
            {"model": "{{Model}}", "messages": [{"role": "user", "content": "Weather?"},
              {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_forecast", "arguments": "{\"city\":\"Oslo\"}"} }]},
              {"role": "tool", "tool_call_id": "call_1", "content": "rain"}], {{Tools}}}
            """);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var request = fixture.Upstream.ChatRequests.Last(r => r.Messages.Count == 3 && r.Messages[2].Role == "tool");
        Assert.False(request.Messages[1].HasContent);
        var call = Assert.Single(request.Messages[1].ToolCalls);
        Assert.Equal(("call_1", "get_forecast", "{\"city\":\"Oslo\"}"), (call.Id, call.Name, call.Arguments));
        Assert.Equal(("call_1", "rain"), (request.Messages[2].ToolCallId, request.Messages[2].Content));
    }

    [Theory]
    [InlineData("""{"role": "user", "content": "x"}], "tool_choice": "sometimes" """, "tool_choice")]
    [InlineData("""{"role": "user", "content": "x"}], "tool_choice": {"type": "function"} """, "tool_choice")]
    [InlineData("""{"role": "user", "content": "x"}], "response_format": {"type": "yaml"} """, "response_format.type")]
    [InlineData("""{"role": "user", "content": "x"}], "response_format": {"type": "json_schema"} """, "response_format.json_schema")]
    [InlineData("""{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"schema": {}}} """, "response_format.json_schema.name")]
    [InlineData("""{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": 3}} """, "response_format.json_schema.schema")]
    [InlineData("""{"role": "user", "content": "x"}], "tools": [{"type": "retrieval"}] """, "tools[0].type")]
    [InlineData("""{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}] """, "tools[0].function.parameters")]
    [InlineData("""{"role": "tool", "content": "x"}] """, "messages[0].tool_call_id")]
    [InlineData("""{"role": "user", "content": null}] """, "messages[0].content")]
    [InlineData("""{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {}}]}, {"role": "user", "content": "x"}] """, "messages[0].tool_calls[0].function.name")]
    public async Task Bad_structured_output_and_tool_fields_are_refused_naming_the_param(string rest, string param)
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model": "{{Model}}", "messages": [{{rest}} }""")).AssertErrorAsync(HttpStatusCode.BadRequest, param);
    }

    [Theory]
    [InlineData("fail:constraint", "response_format.json_schema.schema")]
    [InlineData("fail:tool-schema", "tools[0].function.parameters")]
    public async Task A_schema_the_engine_refuses_is_a_400_naming_the_param_with_the_engines_message(string content, string param)
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var error = await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model": "{{Model}}", "messages": [{"role": "user", "content": "{{content}}"}]}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, param);
        Assert.StartsWith(param + ": constraint.", error.GetProperty("message").GetString());
        Assert.Contains("keyword 'patternProperties' is not supported.", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Unknown_fields_and_unsupported_OpenAI_fields_are_refused_by_name_on_both_completion_APIs()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var unknown = await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model": "{{Model}}", "messages": [{"role": "user", "content": "x"}], "frobnicate": 1}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "frobnicate");
        Assert.Equal("Unrecognized request argument supplied: frobnicate", unknown.GetProperty("message").GetString());
        foreach (var field in new[] { "\"logit_bias\": {\"1\": 5}", "\"audio\": {\"voice\": \"alloy\"}", "\"modalities\": [\"text\", \"audio\"]", "\"functions\": []", "\"prediction\": {}", "\"verbosity\": \"low\"", "\"web_search_options\": {}" })
        {
            var name = field[1..field.IndexOf('"', 1)];
            await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model": "{{Model}}", "messages": [{"role": "user", "content": "x"}], {{field}} }"""))
                .AssertErrorAsync(HttpStatusCode.BadRequest, name);
        }
        await (await client.PostJsonAsync("/v1/completions", $$"""{"model": "{{Model}}", "prompt": "x", "tools": []}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "tools");
    }

    [Fact]
    public async Task A_message_field_the_gateway_does_not_implement_is_refused_by_its_path_and_hints_are_accepted()
    {
        using var client = fixture.CreateClient(GatewayFixture.BobKey);
        var unknown = await (await client.PostJsonAsync("/v1/chat/completions",
                $$"""{"model": "{{Model}}", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "frobnicate": true}, {"role": "user", "content": "z"}]}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "messages[1].frobnicate");
        Assert.Equal("Unrecognized request argument supplied: messages[1].frobnicate", unknown.GetProperty("message").GetString());
        var audio = await (await client.PostJsonAsync("/v1/chat/completions",
                $$$"""{"model": "{{{Model}}}", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "audio": {"id": "a1"}}, {"role": "user", "content": "z"}]}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "messages[1].audio");
        Assert.StartsWith("'messages[1].audio' is not supported", audio.GetProperty("message").GetString());

        var accepted = await client.PostJsonAsync("/v1/chat/completions",
            $$"""{"model": "{{Model}}", "messages": [{"role": "user", "content": "x", "name": "ann"}, {"role": "assistant", "content": "y", "refusal": null, "audio": null}, {"role": "user", "content": "z"}]}""");
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }
}
