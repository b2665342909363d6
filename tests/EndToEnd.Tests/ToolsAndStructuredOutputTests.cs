using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using Grpc.Core;
using Json.Schema;
using Microsoft.Extensions.AI;
using OpenAI;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// Structured outputs and tools against the whole running system, with a model that knows nothing of JSON: forced
/// tool calls and json_schema replies are valid by construction (validated with JsonSchema.Net), tool round trips
/// complete with the official OpenAI SDKs (npm, and .NET through Microsoft.Extensions.AI's function-invoking chat
/// client), and what is not implemented is refused by name.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class ToolsAndStructuredOutputTests(ChatSystemFixture fixture)
{
    // A finite language: every reply under it ends well within the token limit, even from a random model.
    private const string ForecastParameters = """
        {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
         "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city", "days"], "additionalProperties": false}
        """;

    private const string ReportSchema = """
        {"type": "object", "properties": {"sky": {"type": "string", "enum": ["clear", "cloudy", "rain"]},
         "windy": {"type": "boolean"}, "level": {"type": "integer", "minimum": 0, "maximum": 9},
         "note": {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["none", "watch"]}]}},
         "required": ["sky", "windy", "level", "note"], "additionalProperties": false}
        """;

    private static readonly JsonSchema Forecast = JsonSchema.FromText(ForecastParameters);
    private static readonly JsonSchema Report = JsonSchema.FromText(ReportSchema);

    private const string TimeParameters = """{"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]}}, "required": ["city"], "additionalProperties": false}""";
    private static readonly JsonSchema Time = JsonSchema.FromText(TimeParameters);

    private ChatSystem System => fixture.System;

    private HttpClient Http() => new() { BaseAddress = System.Gateway.Address, Timeout = TimeSpan.FromMinutes(2) };

    private static void AssertValid(JsonSchema schema, string json)
    {
        using var document = JsonDocument.Parse(json);
        var result = schema.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, $"{json} does not validate: {string.Join("; ", (result.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Values))}");
    }

    private static string ToolsJson(string choice, bool parallel = false) =>
        """
        "tools": [{"type": "function", "function": {"name": "get_forecast", "description": "The weather forecast for a city.", "parameters": 
        """ + ForecastParameters + """
        , "strict": true}},
                  {"type": "function", "function": {"name": "get_time", "description": "The time in a city.", "parameters": 
        """ + TimeParameters + """
        }}], "tool_choice": 
        """ + choice + ", \"parallel_tool_calls\": " + (parallel ? "true" : "false");

    [Fact]
    public async Task A_forced_call_of_a_named_function_matches_its_parameter_schema()
    {
        using var client = Http();
        var named = ToolsJson("""{"type": "function", "function": {"name": "get_forecast"}}""");
        for (var seed = 1; seed <= 5; seed++)
        {
            var response = await client.PostJsonAsync("/v1/chat/completions", $$$"""
                {"model": "model", "messages": [{"role": "user", "content": "Weather in Oslo?"}], "seed": {{{seed}}}, "max_tokens": 200,
                 {{{named}}}}
                """);
            var body = await response.JsonAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            var choice = body.GetProperty("choices")[0];
            Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
            Assert.Equal(JsonValueKind.Null, choice.GetProperty("message").GetProperty("content").ValueKind);
            var call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
            Assert.Matches("^call_[A-Za-z0-9]{24}$", call.GetProperty("id").GetString());
            Assert.Equal("function", call.GetProperty("type").GetString());
            Assert.Equal("get_forecast", call.GetProperty("function").GetProperty("name").GetString());
            AssertValid(Forecast, call.GetProperty("function").GetProperty("arguments").GetString()!);
        }
    }

    [Fact]
    public async Task A_required_call_streams_as_OpenAI_streams_tool_calls_and_matches_its_schema()
    {
        using var client = Http();
        var required = ToolsJson("\"required\"");
        var response = await client.PostJsonAsync("/v1/chat/completions", $$$"""
            {"model": "model", "messages": [{"role": "user", "content": "Weather or time?"}], "seed": 3, "max_tokens": 200, "stream": true,
             {{{required}}}}
            """);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chunks = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Where(e => e.StartsWith("data: {", StringComparison.Ordinal)).Select(e => JsonDocument.Parse(e[6..]).RootElement).ToList();

        string? id = null, name = null, finish = null;
        var arguments = new StringBuilder();
        foreach (var chunk in chunks)
        {
            var choice = chunk.GetProperty("choices")[0];
            if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = choice.GetProperty("finish_reason").GetString();
            if (!choice.GetProperty("delta").TryGetProperty("tool_calls", out var calls)) continue;
            var delta = Assert.Single(calls.EnumerateArray());
            Assert.Equal(0, delta.GetProperty("index").GetInt32());
            if (id is null)
            {
                // The first delta of a call: index, id, type, function.name and empty arguments.
                id = delta.GetProperty("id").GetString();
                Assert.Equal("function", delta.GetProperty("type").GetString());
                name = delta.GetProperty("function").GetProperty("name").GetString();
                Assert.Equal("", delta.GetProperty("function").GetProperty("arguments").GetString());
            }
            else
            {
                Assert.False(delta.TryGetProperty("id", out _));
                Assert.False(delta.GetProperty("function").TryGetProperty("name", out _));
                arguments.Append(delta.GetProperty("function").GetProperty("arguments").GetString());
            }
        }
        Assert.Matches("^call_[A-Za-z0-9]{24}$", id);
        Assert.Equal("tool_calls", finish);
        Assert.Contains(name, new[] { "get_forecast", "get_time" });
        AssertValid(name == "get_forecast" ? Forecast : Time, arguments.ToString());
    }

    [Fact]
    public async Task Replies_under_a_strict_json_schema_validate_in_100_of_100_seeded_samples_and_json_object_replies_parse()
    {
        using var client = Http();
        // 100 seeded samples: 25 seeds, 4 choices each.
        var samples = 0;
        for (var seed = 1; seed <= 25; seed++)
        {
            var response = await client.PostJsonAsync("/v1/chat/completions", $$$"""
                {"model": "model", "messages": [{"role": "user", "content": "Report the weather."}], "seed": {{{seed}}}, "n": 4, "max_tokens": 200,
                 "response_format": {"type": "json_schema", "json_schema": {"name": "report", "strict": true, "schema": {{{ReportSchema}}} } } }
                """);
            var body = await response.JsonAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            foreach (var choice in body.GetProperty("choices").EnumerateArray())
            {
                Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
                AssertValid(Report, choice.GetProperty("message").GetProperty("content").GetString()!);
                samples++;
            }
        }
        Assert.Equal(100, samples);

        // Any JSON object: a random model may write a long one, so only replies that ended by themselves must parse,
        // and some must.
        var completed = 0;
        for (var seed = 1; seed <= 6; seed++)
        {
            var response = await client.PostJsonAsync("/v1/chat/completions", $$$"""
                {"model": "model", "messages": [{"role": "user", "content": "Some JSON please."}], "seed": {{{seed}}}, "max_tokens": 96, "temperature": 0.7,
                 "response_format": {"type": "json_object"}}
                """);
            var choice = (await response.JsonAsync()).GetProperty("choices")[0];
            var content = choice.GetProperty("message").GetProperty("content").GetString()!;
            Assert.StartsWith("{", content);
            if (choice.GetProperty("finish_reason").GetString() != "stop") continue;
            Assert.IsType<JsonObject>(JsonNode.Parse(content));
            completed++;
        }
        Assert.True(completed > 0, "no json_object reply ended within 96 tokens");
    }

    [Fact]
    public async Task A_schema_feature_the_engine_does_not_support_is_a_400_naming_the_param()
    {
        using var client = Http();
        var schema = """{"type": "object", "patternProperties": {"^x": {"type": "string"}}}""";
        var format = await (await client.PostJsonAsync("/v1/chat/completions", $$$"""
            {"model": "model", "messages": [{"role": "user", "content": "Hi"}],
             "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {{{schema}}} } } }
            """)).AssertErrorAsync(HttpStatusCode.BadRequest, "response_format.json_schema.schema");
        Assert.Contains("patternProperties", format.GetProperty("message").GetString());

        var tools = await (await client.PostJsonAsync("/v1/chat/completions", $$$"""
            {"model": "model", "messages": [{"role": "user", "content": "Hi"}], "tool_choice": "required",
             "tools": [{"type": "function", "function": {"name": "f", "parameters": {{{schema}}} }}]}
            """)).AssertErrorAsync(HttpStatusCode.BadRequest, "tools[0].function.parameters");
        Assert.Contains("patternProperties", tools.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Unknown_and_unsupported_fields_are_refused_by_name_and_hints_are_accepted()
    {
        using var client = Http();
        const string messages = """ "model": "model", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4 """;
        var unknown = await (await client.PostJsonAsync("/v1/chat/completions", $$$"""{ {{{messages}}}, "temprature": 0.5 }"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "temprature");
        Assert.Equal("Unrecognized request argument supplied: temprature", unknown.GetProperty("message").GetString());
        await (await client.PostJsonAsync("/v1/chat/completions", $$$"""{ {{{messages}}}, "logit_bias": {"50256": -100} }"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "logit_bias");
        await (await client.PostJsonAsync("/v1/chat/completions", $$$"""{ {{{messages}}}, "reasoning_effort": "low" }"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "reasoning_effort");
        await (await client.PostJsonAsync("/v1/completions", """{"model": "model", "prompt": "Hi", "max_tokens": 4, "metadata": {"a": "b"}}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "metadata");

        var hinted = await client.PostJsonAsync("/v1/chat/completions", $$$"""
            { {{{messages}}}, "user": "u-1", "metadata": {"team": "a"}, "store": false, "service_tier": "auto",
              "prompt_cache_key": "k", "safety_identifier": "s-1", "logit_bias": {}, "modalities": ["text"], "audio": null }
            """);
        Assert.True(hinted.StatusCode == HttpStatusCode.OK, await hinted.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_tool_round_trip_completes_with_the_openai_npm_SDK()
    {
        var result = await NodeScript.RunAsync("tests/Gateway.Tests/Interop/openai-tools.mjs", [System.Gateway.Address.ToString()], TimeSpan.FromSeconds(180));
        Assert.True(result.ExitCode == 0, result.Describe() + "\n" + System.Logs);
        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        foreach (var arguments in summary.GetProperty("calls").EnumerateArray()) AssertValid(Forecast, arguments.GetString()!);
    }

    [Fact]
    public async Task A_tool_round_trip_completes_with_the_OpenAI_dotnet_SDK_through_the_function_invoking_chat_client()
    {
        var openAi = new OpenAIClient(new ApiKeyCredential("sk-no-key-on-loopback"), new OpenAIClientOptions { Endpoint = new Uri(System.Gateway.Address, "/v1") });
        using var chat = openAi.GetChatClient("model").AsIChatClient().AsBuilder().UseFunctionInvocation().Build();
        await AssertRoundTripAsync(chat);
    }

    [Fact]
    public async Task A_tool_round_trip_completes_with_ChatServices_Client_through_the_function_invoking_chat_client()
    {
        using var inner = new ChatServices.Client.ChatServicesChatClient(new ChatServices.Client.ChatServicesClientOptions { Address = System.Dialogue.Address, OwnerId = "local" });
        using var chat = inner.AsBuilder().UseFunctionInvocation().Build();
        await AssertRoundTripAsync(chat);
    }

    /// <summary>The model is made to call get_forecast; the client invokes it and sends the result; the model replies.</summary>
    private static async Task AssertRoundTripAsync(IChatClient chat)
    {
        var forecast = new ForecastFunction();
        var options = new ChatOptions { Tools = [forecast], ToolMode = ChatToolMode.RequireSpecific("get_forecast"), AllowMultipleToolCalls = false, MaxOutputTokens = 200, Seed = 5 };

        var response = await chat.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "Weather in Lima?")], options);

        var invoked = Assert.Single(forecast.Invocations);
        AssertValid(Forecast, invoked);
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("get_forecast", call.Name);
        Assert.StartsWith("call_", call.CallId);
        var result = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal(call.CallId, result.CallId);
        Assert.Equal(ChatRole.Assistant, response.Messages[^1].Role);
        Assert.Contains(response.FinishReason, new ChatFinishReason?[] { ChatFinishReason.Stop, ChatFinishReason.Length });
    }

    /// <summary>get_forecast with the finite parameters schema, recording the arguments of each invocation as JSON.</summary>
    private sealed class ForecastFunction : AIFunction
    {
        private static readonly JsonElement Schema = JsonDocument.Parse(ForecastParameters).RootElement;

        public List<string> Invocations { get; } = [];
        public override string Name => "get_forecast";
        public override string Description => "The weather forecast for a city.";
        public override JsonElement JsonSchema => Schema;

        protected override ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            lock (Invocations) Invocations.Add(JsonSerializer.Serialize(arguments.ToDictionary(a => a.Key, a => a.Value)));
            return ValueTask.FromResult<object?>($"Sunny in {arguments["city"]} for {arguments["days"]} days.");
        }
    }

    [Fact]
    public async Task Tool_calls_and_tool_results_are_stored_and_read_back()
    {
        var dialogue = System.DialogueClient;
        var conversation = await dialogue.CreateConversationAsync(new CreateConversationRequest { OwnerId = "local" });
        var request = new ChatRequest
        {
            OwnerId = "local",
            ConversationId = conversation.Id,
            UserMessage = "Weather in Paris?",
            ToolChoice = new ToolChoice { Mode = ToolChoice.Types.Mode.Function, FunctionName = "get_forecast" },
            ParallelToolCalls = false,
            Settings = new GenerationSettings { MaxTokens = 200, Seed = 11 },
        };
        request.Tools.Add(new Tool { Name = "get_forecast", Description = "The weather forecast for a city.", Parameters = ForecastParameters });

        var calls = new List<ToolCallDelta>();
        string? finish = null;
        using (var call = dialogue.Chat(request))
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync())
            {
                if (e.EventCase == ChatEvent.EventOneofCase.Delta) calls.AddRange(e.Delta.ToolCalls);
                if (e.EventCase == ChatEvent.EventOneofCase.Finished) finish = e.Finished.FinishReason;
            }
        }
        Assert.Equal("tool_calls", finish);
        var made = Assert.Single(calls);

        var answer = new ChatRequest { OwnerId = "local", ConversationId = conversation.Id, Settings = new GenerationSettings { MaxTokens = 16, Seed = 12 } };
        answer.Tools.Add(request.Tools[0]);
        answer.ToolResults.Add(new Protos.Chat.V1.ChatMessage { Role = "tool", ToolCallId = made.Id, Content = "{\"forecast\": \"rain\"}" });
        var outcome = await dialogue.ChatToEndAsync(answer);
        Assert.Contains(outcome.Finished[0].FinishReason, new[] { "stop", "length" });

        var stored = await dialogue.GetConversationAsync(new GetConversationRequest { OwnerId = "local", ConversationId = conversation.Id, IncludeMessages = true });
        Assert.Equal(["user", "assistant", "tool", "assistant"], stored.Messages.Select(m => m.Role));
        var reply = stored.Messages[1];
        Assert.False(reply.HasContent);
        Assert.Equal("tool_calls", reply.FinishReason);
        var storedCall = Assert.Single(reply.ToolCalls);
        Assert.Equal((made.Id, made.Name, made.Arguments), (storedCall.Id, storedCall.Name, storedCall.Arguments));
        AssertValid(Forecast, storedCall.Arguments);
        Assert.Equal(made.Id, stored.Messages[2].ToolCallId);
        Assert.Equal("{\"forecast\": \"rain\"}", stored.Messages[2].Content);
        Assert.Equal(stored.Messages[2].Id, stored.Messages[3].ParentId);

        // The conversations API returns them, and the web page shows the call with its result under it.
        using var client = Http();
        var messages = (await (await client.GetAsync($"/api/conversations/{conversation.Id}")).JsonAsync()).GetProperty("messages");
        Assert.Equal(JsonValueKind.Null, messages[1].GetProperty("content").ValueKind);
        var apiCall = Assert.Single(messages[1].GetProperty("tool_calls").EnumerateArray());
        Assert.Equal((made.Id, made.Name, made.Arguments), (apiCall.GetProperty("id").GetString(), apiCall.GetProperty("name").GetString(), apiCall.GetProperty("arguments").GetString()));
        Assert.Equal(made.Id, messages[2].GetProperty("tool_call_id").GetString());

        var page = await NodeScript.RunAsync("tests/Gateway.Tests/WebPage/tool-calls-page.mjs",
            [System.Gateway.Address.ToString(), conversation.Id, "--screenshot", Path.Combine(RepositoryRoot.Path, "artifacts", "screenshots", "end-to-end", "tool-call.png")],
            TimeSpan.FromSeconds(90));
        Assert.True(page.ExitCode == 0, page.Describe());
        var shown = JsonDocument.Parse(page.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("ƒ get_forecast", shown.GetProperty("name").GetString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(made.Arguments), JsonNode.Parse(shown.GetProperty("arguments").GetRawText())));
        Assert.Contains("\"forecast\": \"rain\"", shown.GetProperty("result").GetString());
    }
}
