using ChatServices.Client.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace ChatServices.Client.Tests;

/// <summary>What <see cref="ChatServicesChatClient"/> sends for messages and ChatOptions, as the server receives it, and what it refuses to send.</summary>
public sealed class ChatOptionsMappingTests : RecordingServerTests
{
    protected override ChatServicesClientOptions Configure(ChatServicesClientOptions options)
    {
        options.OwnerId = "team-a";
        return options;
    }

    private ChatRequest SentRequest() => (ChatRequest)Assert.Single(Server.CallsTo("/chat.v1.Dialogue/Chat")).Request;

    [Fact]
    public async Task Every_supported_option_reaches_the_chat_settings()
    {
        await Client.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions
        {
            Temperature = 0.5f, TopP = 0.9f, TopK = 40, MaxOutputTokens = 64, StopSequences = ["END", "STOP"], Seed = 42,
            FrequencyPenalty = 0.25f, PresencePenalty = -0.5f,
            AdditionalProperties = new() { ["min_p"] = 0.05, ["repetition_penalty"] = 1.1f },
        });

        var settings = SentRequest().Settings;
        Assert.Equal(0.5f, settings.Temperature);
        Assert.Equal(0.9f, settings.TopP);
        Assert.Equal(40, settings.TopK);
        Assert.Equal(64, settings.MaxTokens);
        Assert.Equal(["END", "STOP"], settings.Stop);
        Assert.Equal(42UL, settings.Seed);
        Assert.Equal(0.25f, settings.FrequencyPenalty);
        Assert.Equal(-0.5f, settings.PresencePenalty);
        Assert.Equal(0.05f, settings.MinP);
        Assert.Equal(1.1f, settings.RepetitionPenalty);
    }

    [Fact]
    public async Task Without_options_nothing_is_set_so_the_service_defaults_apply()
    {
        await Client.GetResponseAsync([new(ChatRole.User, "hi")]);

        var settings = SentRequest().Settings;
        Assert.False(settings.HasTemperature);
        Assert.False(settings.HasSeed);
        Assert.Equal(new GenerationSettings(), settings);
    }

    [Fact]
    public async Task A_stateless_call_sends_the_whole_history_with_instructions_first_and_the_owner()
    {
        await Client.GetResponseAsync(
            [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hi"), new(ChatRole.Assistant, "Hello."), new(ChatRole.User, "Bye")],
            new ChatOptions { Instructions = "Answer in French." });

        var request = SentRequest();
        Assert.Equal("team-a", request.OwnerId);
        Assert.Empty(request.ConversationId);
        Assert.Equal(["system:Answer in French.", "system:Be brief.", "user:Hi", "assistant:Hello.", "user:Bye"],
            request.Messages.Select(m => $"{m.Role}:{m.Content}"));
    }

    [Fact]
    public async Task A_conversation_call_sends_only_the_new_user_message_with_the_conversation_id()
    {
        var response = await Client.GetResponseAsync([new(ChatRole.User, "And then?")], new ChatOptions { ConversationId = "c-1" });

        var request = SentRequest();
        Assert.Equal("c-1", request.ConversationId);
        Assert.Equal("And then?", request.UserMessage);
        Assert.Empty(request.Messages);
        Assert.Equal("c-1", response.ConversationId);
    }

    [Fact]
    public async Task Regenerate_asks_the_service_to_generate_the_stored_reply_again()
    {
        await Client.GetResponseAsync([], new ChatOptions { ConversationId = "c-2", AdditionalProperties = new() { ["regenerate"] = true } });

        var request = SentRequest();
        Assert.True(request.Regenerate);
        Assert.Empty(request.UserMessage);
    }

    [Fact]
    public async Task A_raw_request_from_the_factory_is_the_base_and_options_fill_what_it_leaves_unset()
    {
        await Client.GetResponseAsync([], new ChatOptions
        {
            RawRepresentationFactory = _ => new ChatRequest { Prompt = "Once upon a time", Settings = new GenerationSettings { MaxTokens = 5 } },
            MaxOutputTokens = 99, Temperature = 0,
        });

        var request = SentRequest();
        Assert.Equal("Once upon a time", request.Prompt);
        Assert.Equal(5, request.Settings.MaxTokens);
        Assert.Equal(0f, request.Settings.Temperature);
    }

    [Fact]
    public async Task Functions_tool_modes_response_formats_calls_and_results_map_to_the_chat_request()
    {
        var function = AIFunctionFactory.Create((string city) => city, "get_forecast", "The forecast.");
        await Client.GetResponseAsync(
        [
            new(ChatRole.User, "Weather?"),
            new(ChatRole.Assistant, [new FunctionCallContent("call_1", "get_forecast", new Dictionary<string, object?> { ["city"] = "Oslo" })]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "rain")]),
        ], new ChatOptions { Tools = [function], ToolMode = ChatToolMode.RequireSpecific("get_forecast"), AllowMultipleToolCalls = false, ResponseFormat = ChatResponseFormat.Text });

        var request = (ChatRequest)Server.CallsTo("/chat.v1.Dialogue/Chat").Last().Request;
        var tool = Assert.Single(request.Tools);
        Assert.Equal(("get_forecast", "The forecast."), (tool.Name, tool.Description));
        Assert.Equal(function.JsonSchema.GetRawText(), tool.Parameters);
        Assert.Equal((ToolChoice.Types.Mode.Function, "get_forecast"), (request.ToolChoice.Mode, request.ToolChoice.FunctionName));
        Assert.False(request.ParallelToolCalls);
        Assert.Equal(["user", "assistant", "tool"], request.Messages.Select(m => m.Role));
        Assert.False(request.Messages[1].HasContent);
        var call = Assert.Single(request.Messages[1].ToolCalls);
        Assert.Equal(("call_1", "get_forecast", "{\"city\":\"Oslo\"}"), (call.Id, call.Name, call.Arguments));
        Assert.Equal(("call_1", "rain"), (request.Messages[2].ToolCallId, request.Messages[2].Content));
        Assert.Null(request.Settings.Constraint);

        await Client.GetResponseAsync([new(ChatRole.User, "x")], new ChatOptions { ToolMode = ChatToolMode.RequireAny, Tools = [function], ResponseFormat = ChatResponseFormat.Json });
        request = (ChatRequest)Server.CallsTo("/chat.v1.Dialogue/Chat").Last().Request;
        Assert.Equal(ToolChoice.Types.Mode.Required, request.ToolChoice.Mode);
        Assert.NotNull(request.Settings.Constraint.JsonObject);

        var schema = System.Text.Json.JsonDocument.Parse("""{"type":"object"}""").RootElement;
        await Client.GetResponseAsync([new(ChatRole.User, "x")], new ChatOptions { ToolMode = ChatToolMode.None, ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "s") });
        request = (ChatRequest)Server.CallsTo("/chat.v1.Dialogue/Chat").Last().Request;
        Assert.Equal(ToolChoice.Types.Mode.None, request.ToolChoice.Mode);
        Assert.Equal("""{"type":"object"}""", request.Settings.Constraint.JsonSchema);
    }

    public static TheoryData<string, Func<ChatOptions>, Type> RefusedOptions => new()
    {
        { "a hosted tool", () => new ChatOptions { Tools = [new HostedWebSearchTool()] }, typeof(NotSupportedException) },
        { "reasoning", () => new ChatOptions { Reasoning = new ReasoningOptions() }, typeof(NotSupportedException) },
        { "background responses", () => new ChatOptions { AllowBackgroundResponses = true }, typeof(NotSupportedException) },
        { "an unknown additional property", () => new ChatOptions { AdditionalProperties = new() { ["logit_bias"] = 1 } }, typeof(ArgumentException) },
        { "a non-numeric min_p", () => new ChatOptions { AdditionalProperties = new() { ["min_p"] = "high" } }, typeof(ArgumentException) },
        { "a negative seed", () => new ChatOptions { Seed = -1 }, typeof(ArgumentException) },
        { "zero max output tokens", () => new ChatOptions { MaxOutputTokens = 0 }, typeof(ArgumentException) },
        { "regenerate without a conversation", () => new ChatOptions { AdditionalProperties = new() { ["regenerate"] = true } }, typeof(ArgumentException) },
        { "instructions in a stored conversation", () => new ChatOptions { ConversationId = "c", Instructions = "x" }, typeof(NotSupportedException) },
        { "several choices in a raw request", () => new ChatOptions { RawRepresentationFactory = _ => new ChatRequest { Settings = new GenerationSettings { N = 2 } } }, typeof(NotSupportedException) },
    };

    [Theory]
    [MemberData(nameof(RefusedOptions))]
    public async Task An_option_the_service_cannot_honour_is_refused_before_any_call(string what, Func<ChatOptions> options, Type exception)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => Client.GetResponseAsync([new(ChatRole.User, "hi")], options()));

        Assert.IsType(exception, error);
        Assert.Empty(Server.Calls);
        Assert.False(string.IsNullOrWhiteSpace(error.Message), what);
    }

    public static TheoryData<string, AiChatMessage[], ChatOptions?, Type> RefusedMessages => new()
    {
        { "no messages", [], null, typeof(ArgumentException) },
        { "a tool message", [new(ChatRole.Tool, "42")], null, typeof(NotSupportedException) },
        { "an unknown role", [new(new ChatRole("developer"), "x")], null, typeof(ArgumentException) },
        { "an image", [new(ChatRole.User, [new UriContent("https://example.com/a.png", "image/png")])], null, typeof(NotSupportedException) },
        { "a function result in a user message", [new(ChatRole.User, [new FunctionResultContent("1", "r")])], null, typeof(NotSupportedException) },
        { "history with a conversation id", [new(ChatRole.User, "a"), new(ChatRole.User, "b")], new ChatOptions { ConversationId = "c" }, typeof(ArgumentException) },
        { "an assistant message as a conversation turn", [new(ChatRole.Assistant, "a")], new ChatOptions { ConversationId = "c" }, typeof(ArgumentException) },
    };

    [Theory]
    [MemberData(nameof(RefusedMessages))]
    public async Task Messages_the_service_cannot_take_are_refused_before_any_call(string what, AiChatMessage[] messages, ChatOptions? options, Type exception)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => Client.GetResponseAsync(messages, options));

        Assert.IsType(exception, error);
        Assert.Empty(Server.Calls);
        Assert.False(string.IsNullOrWhiteSpace(error.Message), what);
    }

    [Fact]
    public async Task A_model_id_other_than_the_served_model_is_refused_and_the_served_one_is_accepted()
    {
        var wrong = await Assert.ThrowsAsync<ArgumentException>(() => Client.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { ModelId = "gpt-4o" }));
        await Client.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { ModelId = "test-model" });

        Assert.Contains("test-model", wrong.Message);
        Assert.Single(Server.CallsTo("/chat.v1.Dialogue/Chat"));
        Assert.Single(Server.CallsTo("/chat.v1.Dialogue/GetModel")); // asked once, then remembered
    }
}
