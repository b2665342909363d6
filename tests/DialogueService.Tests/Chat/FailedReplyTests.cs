using System.Text.Json.Nodes;
using ChatServices.DialogueService.Chat;
using ChatServices.DialogueService.Conversations;
using ChatServices.DialogueService.Model;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StoreMessageStatus = ChatServices.DialogueService.Conversations.MessageStatus;

namespace ChatServices.DialogueService.Tests.Chat;

/// <summary>
/// A conversation survives a failed reply with every chat template family the service ships or is tested with:
/// a reply that failed part-way keeps its partial text as the assistant turn, a user turn whose reply failed
/// before its first token is left out of later prompts (it stays stored), so the prompt always alternates user /
/// assistant and renders — also with templates such as Llama 2's that refuse anything else — and the user can go on
/// or regenerate.
/// </summary>
public sealed class FailedReplyTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("failed-reply-").FullName;
    private SqliteConversationStore _store = null!;

    public static TheoryData<string> Templates()
    {
        var data = new TheoryData<string> { "fallback (Llama 2, the embedded default's)", "llama3 (npm)", "qwen3 (npm)" };
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "data"), "*.jinja").Order())
        {
            // Loops over message.tool_calls unguarded, so it renders no assistant turn without tool calls at all (as in
            // @huggingface/jinja, its reference): it cannot hold a second turn, failed reply or not.
            if (Path.GetFileName(file) == "qwen2.5-generation.jinja") continue;
            data.Add(Path.GetFileName(file));
        }
        return data;
    }

    public async Task InitializeAsync()
    {
        _store = SqliteConversationStore.InDirectory(Path.Combine(_dir, "data"));
        await _store.MigrateAsync();
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public async Task A_conversation_goes_on_after_replies_that_failed_part_way_and_before_their_first_token(string template)
    {
        var model = LoadModel(template);
        var id = (await _store.CreateAsync("owner", null)).Id.ToString();
        ChatRequest Turn(string text) => new() { OwnerId = "owner", ConversationId = id, UserMessage = text };

        await RunAsync(model, new(Ids(model, "First answer.")), Turn("First question"));
        // Fails after two tokens (the replica died): the partial reply is stored, failed.
        await Assert.ThrowsAsync<RpcException>(() => RunAsync(model, new(Ids(model, "Partial second answer"), failAfter: 2), Turn("Second question")));
        // Fails before its first token: the user message is stored, its reply is empty and failed.
        await Assert.ThrowsAsync<RpcException>(() => RunAsync(model, new(Ids(model, "never"), failAfter: 0), Turn("Third question")));

        var next = new ChatPipelineTests.ScriptedBackend(Ids(model, "Fourth answer."));
        await RunAsync(model, next, Turn("Fourth question"));
        var prompt = model.Tokenizer.Decode(next.Requests[0].PromptTokenIds);
        Assert.Contains("First question", prompt);
        Assert.Contains("First answer.", prompt);
        Assert.Contains("Second question", prompt);
        Assert.Contains(model.Tokenizer.Decode(Ids(model, "Partial second answer")[..2]).Trim(), prompt);
        Assert.DoesNotContain("Third question", prompt);
        Assert.Contains("Fourth question", prompt);

        // A failed turn can be regenerated as well as followed.
        await Assert.ThrowsAsync<RpcException>(() => RunAsync(model, new(Ids(model, "never"), failAfter: 0), Turn("Fifth question")));
        var regenerated = new ChatPipelineTests.ScriptedBackend(Ids(model, "Fifth answer."));
        await RunAsync(model, regenerated, new ChatRequest { OwnerId = "owner", ConversationId = id, Regenerate = true });
        Assert.Contains("Fifth question", model.Tokenizer.Decode(regenerated.Requests[0].PromptTokenIds));

        var stored = (await _store.GetAsync("owner", Guid.Parse(id), includeMessages: true)).Messages;
        Assert.Equal(
            ["First question", "First answer.", "Second question", "Third question", "Fourth question", "Fourth answer.", "Fifth question", "Fifth answer."],
            stored.Where(m => m.Status != StoreMessageStatus.Failed).Select(m => m.Content.Trim()));
        Assert.Equal(3, stored.Count(m => m.Status == StoreMessageStatus.Failed));
    }

    private static int[] Ids(ServedModel model, string text) => model.Tokenizer.Encode(text, addSpecialTokens: false);

    private async Task RunAsync(ServedModel model, ChatPipelineTests.ScriptedBackend backend, ChatRequest request)
    {
        var pipeline = new ChatPipeline(model, _store, backend, Options.Create(new ContentLoggingOptions()), NullLogger<ChatPipeline>.Instance);
        await pipeline.RunAsync(request, new ChatPipelineTests.CollectingWriter(), CancellationToken.None);
    }

    /// <summary>A model folder with Llama 2's tokenizer and <paramref name="template"/> as its chat template.</summary>
    private ServedModel LoadModel(string template)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "model")).FullName;
        var llama2 = Path.Combine(TestPaths.NodeModules, "@lenml", "tokenizer-llama2", "models");
        File.Copy(Path.Combine(llama2, "tokenizer.json"), Path.Combine(folder, "tokenizer.json"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(llama2, "tokenizer_config.json")))!.AsObject();
        config.Remove("chat_template");
        var source = template switch
        {
            _ when template.StartsWith("fallback", StringComparison.Ordinal) => null,
            "llama3 (npm)" => NpmTemplate("tokenizer-llama3"),
            "qwen3 (npm)" => NpmTemplate("tokenizer-qwen3"),
            _ => File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "data", template)),
        };
        if (source is not null) config["chat_template"] = source;
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "genai_config.json"),
            new JsonObject { ["model"] = new JsonObject { ["context_length"] = 2048, ["eos_token_id"] = 2 } }.ToJsonString());
        var model = ServedModel.Load(new ServedModelOptions { ModelPath = folder, ModelId = "test-model" });
        Assert.Equal(source is not null, model.HasOwnChatTemplate);
        return model;
    }

    private static string NpmTemplate(string package) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.NodeModules, "@lenml", package, "models", "tokenizer_config.json")))!["chat_template"]!.GetValue<string>();
}
