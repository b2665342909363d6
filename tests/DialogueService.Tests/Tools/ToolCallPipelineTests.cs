using ChatServices.DialogueService.Chat;
using ChatServices.DialogueService.Conversations;
using ChatServices.DialogueService.Model;
using ChatServices.DialogueService.Tests.Chat;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ChatServices.DialogueService.Tests.Tools;

/// <summary>
/// Tool calls through the chat pipeline, with a real tokenizer, template and SQLite store and a scripted backend in
/// place of InferenceService: what the pipeline sends (the constraint) and what it makes of a reply that calls tools.
/// </summary>
public sealed class ToolCallPipelineTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tool-pipeline-").FullName;
    private readonly ServedModel _model = ChatPipelineTests.Llama3Text.Value;
    private readonly SqliteConversationStore _store;

    public ToolCallPipelineTests() => _store = SqliteConversationStore.InDirectory(Path.Combine(_dir, "data"));

    public async Task InitializeAsync() => await _store.MigrateAsync();

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private const string Reply = "Let me look.<tool_call>\n{\"name\": \"get_forecast\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";

    private async Task<List<ChatEvent>> RunAsync(ChatPipelineTests.ScriptedBackend backend, ChatRequest request)
    {
        var output = new ChatPipelineTests.CollectingWriter();
        await new ChatPipeline(_model, _store, backend, Options.Create(new ContentLoggingOptions()), NullLogger<ChatPipeline>.Instance)
            .RunAsync(request, output, CancellationToken.None);
        return output.Events;
    }

    private static void AddTool(ChatRequest request, ToolChoice.Types.Mode mode)
    {
        request.Tools.Add(new Tool { Name = "get_forecast", Description = "The forecast.", Parameters = """{"type": "object", "properties": {"city": {"type": "string"}}}""" });
        request.ToolChoice = new ToolChoice { Mode = mode };
    }

    [Fact]
    public async Task A_reply_that_calls_a_tool_streams_the_call_as_a_delta_finishes_with_tool_calls_and_is_stored_with_it()
    {
        var conversation = await _store.CreateAsync("tools", null);
        var request = new ChatRequest { OwnerId = "tools", ConversationId = conversation.Id.ToString(), UserMessage = "Weather in Oslo?" };
        AddTool(request, ToolChoice.Types.Mode.Auto);
        var backend = new ChatPipelineTests.ScriptedBackend(_model.Tokenizer.Encode(Reply, addSpecialTokens: false));

        var events = await RunAsync(backend, request);

        Assert.Null(backend.Requests[0].Constraint); // auto: offered, not forced
        var prompt = _model.Tokenizer.Decode(backend.Requests[0].PromptTokenIds);
        Assert.Contains("# Tools", prompt); // Llama 3's template takes no tools: the fallback block
        Assert.Equal("Let me look.", string.Concat(events.Where(e => e.Delta is not null).Select(e => e.Delta.Text)));
        var call = Assert.Single(events.Where(e => e.Delta is not null).SelectMany(e => e.Delta.ToolCalls));
        Assert.Equal((0, "get_forecast", "{\"city\":\"Oslo\"}"), (call.Index, call.Name, call.Arguments));
        var finished = Assert.Single(events, e => e.Finished is not null).Finished;
        Assert.Equal("tool_calls", finished.FinishReason);

        var stored = (await _store.GetAsync("tools", conversation.Id, includeMessages: true)).Messages[^1];
        Assert.Equal("Let me look.", stored.Content);
        Assert.Equal("tool_calls", stored.FinishReason);
        Assert.Equal(call.Id, Assert.Single(stored.ToolCalls!).Id);

        // The result goes in as a tool message and the model is asked again, seeing the call and the result.
        var answer = new ChatRequest { OwnerId = "tools", ConversationId = conversation.Id.ToString() };
        answer.ToolResults.Add(new Protos.Chat.V1.ChatMessage { Role = "tool", ToolCallId = call.Id, Content = "rain" });
        var again = new ChatPipelineTests.ScriptedBackend(_model.Tokenizer.Encode("It rains.", addSpecialTokens: false));
        await RunAsync(again, answer);
        var secondPrompt = _model.Tokenizer.Decode(again.Requests[0].PromptTokenIds);
        Assert.Contains("<tool_call>\n{\"name\":\"get_forecast\",\"arguments\":{\"city\":\"Oslo\"}}\n</tool_call>", secondPrompt);
        Assert.Contains("<tool_response>\nrain\n</tool_response>", secondPrompt);
        var messages = (await _store.GetAsync("tools", conversation.Id, includeMessages: true)).Messages;
        Assert.Equal([MessageRole.User, MessageRole.Assistant, MessageRole.Tool, MessageRole.Assistant], messages.Select(m => m.Role));
        Assert.Equal(call.Id, messages[2].ToolCallId);
        Assert.Equal("It rains.", messages[3].Content);
    }

    [Fact]
    public async Task Required_sends_the_call_grammar_and_a_response_format_sends_its_constraint()
    {
        var request = new ChatRequest { OwnerId = "anyone", Messages = { new Protos.Chat.V1.ChatMessage { Role = "user", Content = "hi" } } };
        AddTool(request, ToolChoice.Types.Mode.Required);
        var backend = new ChatPipelineTests.ScriptedBackend(_model.Tokenizer.Encode(Reply, addSpecialTokens: false));
        await RunAsync(backend, request);
        Assert.Contains("fn-0", backend.Requests[0].Constraint!.Grammar.Gbnf);

        var json = new ChatRequest { OwnerId = "anyone", Messages = { request.Messages }, Settings = new GenerationSettings { Constraint = new Constraint { JsonObject = new JsonObjectConstraint() } } };
        var plain = new ChatPipelineTests.ScriptedBackend(_model.Tokenizer.Encode("{}", addSpecialTokens: false));
        var events = await RunAsync(plain, json);
        Assert.NotNull(plain.Requests[0].Constraint!.JsonObject);
        Assert.Equal("{}", string.Concat(events.Where(e => e.Delta is not null).Select(e => e.Delta.Text)));
    }

    [Fact]
    public async Task Tool_messages_need_their_call_id_and_an_assistant_may_leave_content_out_only_when_it_calls_tools()
    {
        var noId = new ChatRequest { OwnerId = "a", Messages = { new Protos.Chat.V1.ChatMessage { Role = "tool", Content = "x" } } };
        var e1 = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => RunAsync(new([1]), noId));
        Assert.StartsWith("messages[0].tool_call_id:", e1.Status.Detail);
        var noContent = new ChatRequest { OwnerId = "a", Messages = { new Protos.Chat.V1.ChatMessage { Role = "assistant" }, new Protos.Chat.V1.ChatMessage { Role = "user", Content = "x" } } };
        var e2 = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => RunAsync(new([1]), noContent));
        Assert.StartsWith("messages[0].content:", e2.Status.Detail);
    }
}
