using ChatServices.Client;
using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using Grpc.Core;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// ChatServices.Client, as a .NET backend team uses it, against the whole running system: the IChatClient streams
/// and completes replies, continues a stored conversation, cancels mid-stream (freeing the KV cache), and reports
/// errors as .NET exceptions; the tokenizer client against the served tokenizer.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class ClientLibraryTests(ChatSystemFixture fixture) : IDisposable
{
    // The embedded loopback default's owner; naming it is allowed whether or not the services authenticate callers.
    private const string Owner = "local";

    private readonly ChatServicesChatClient _client = new(new ChatServicesClientOptions { Address = fixture.System.Dialogue.Address, OwnerId = Owner });

    private ChatSystem System => fixture.System;

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task The_chat_client_streams_a_reply_and_completes_the_same_reply_with_usage()
    {
        var options = new ChatOptions { MaxOutputTokens = 12, Temperature = 0 };
        ChatMessage[] messages = [new(ChatRole.System, "You are terse."), new(ChatRole.User, "Name three colours.")];

        var updates = await _client.GetStreamingResponseAsync(messages, options).ToListAsync();
        var response = await _client.GetResponseAsync(messages, options);

        Assert.True(updates.Count(u => u.Text.Length > 0) > 1, "the reply streamed in several updates");
        Assert.Equal(string.Concat(updates.Select(u => u.Text)), response.Text);
        Assert.False(string.IsNullOrEmpty(response.Text));
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(12, response.Usage?.OutputTokenCount);
        Assert.True(response.Usage?.InputTokenCount > 0);
        Assert.Equal(Convert.ToInt64(updates[0].AdditionalProperties?["prompt_tokens"]), response.Usage?.InputTokenCount);
        Assert.Null(response.ConversationId);
        Assert.False(string.IsNullOrEmpty(response.ModelId));
    }

    [Fact]
    public async Task The_registered_chat_client_with_middleware_answers_through_the_system()
    {
        var services = new ServiceCollection();
        services.AddChatServicesClient(o => { o.Address = System.Dialogue.Address; o.OwnerId = Owner; })
            .UseFunctionInvocation()
            .UseOpenTelemetry();
        await using var provider = services.BuildServiceProvider();
        var chat = provider.GetRequiredService<IChatClient>();

        var response = await chat.GetResponseAsync([new(ChatRole.User, "Hello!")], new ChatOptions { MaxOutputTokens = 6, Temperature = 0 });
        var tokens = await provider.GetRequiredService<ChatServicesTokenizer>().CountTokensAsync("Hello!");

        Assert.False(string.IsNullOrEmpty(response.Text));
        Assert.Equal(6, response.Usage?.OutputTokenCount);
        Assert.True(tokens > 0);
    }

    [Fact]
    public async Task The_chat_client_continues_a_stored_conversation()
    {
        var conversation = await _client.CreateConversationAsync("Client library", systemPrompt: "You are a travel agent.");
        var options = new ChatOptions { ConversationId = conversation.Id, MaxOutputTokens = 8, Temperature = 0 };

        var first = await _client.GetResponseAsync([new(ChatRole.User, "Plan a day in Lisbon.")], options);
        var second = await _client.GetResponseAsync([new(ChatRole.User, "And the evening?")], options);

        Assert.Equal(conversation.Id, first.ConversationId);
        Assert.Equal(conversation.Id, second.ConversationId);
        Assert.True(second.Usage?.InputTokenCount > first.Usage?.InputTokenCount + first.Usage?.OutputTokenCount, "the second turn's prompt carries the first turn");
        Assert.True(second.Usage?.CachedInputTokenCount > 0, "the stored history's KV was reused");
        var stored = await _client.GetConversationAsync(conversation.Id);
        Assert.Equal(["user:Plan a day in Lisbon.", $"assistant:{first.Text}", "user:And the evening?", $"assistant:{second.Text}"],
            stored.Messages.Select(m => $"{m.Role}:{m.Content}"));
        Assert.Equal(stored.Messages[3].Id, second.AdditionalProperties?["assistant_message_id"]);
        Assert.Contains((await _client.ListConversationsAsync(pageSize: 100)).Conversations, c => c.Id == conversation.Id);

        await _client.DeleteConversationAsync(conversation.Id);
        var gone = await Assert.ThrowsAsync<ChatServicesException>(() => _client.GetConversationAsync(conversation.Id));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Cancelling_mid_stream_cancels_generation_and_frees_the_kv_cache()
    {
        using var cancel = new CancellationTokenSource();
        var deltas = 0;
        ModelInfo? during = null;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in _client.GetStreamingResponseAsync([new(ChatRole.User, "Tell me a long story.")],
                               new ChatOptions { MaxOutputTokens = 900, Temperature = 0 }, cancel.Token))
            {
                if (update.Text.Length == 0 || ++deltas < 3) continue;
                during = await System.InferenceClient.GetModelInfoAsync(new GetModelInfoRequest());
                await cancel.CancelAsync();
            }
        });

        Assert.NotNull(during);
        Assert.Equal(1u, during.Running + during.Waiting);
        Assert.True(during.KvCache.UsedSlots > 0);
        var after = await System.InferenceClient.WaitUntilIdleAsync();
        Assert.Equal(0u, after.Running);
        Assert.Equal(0u, after.KvCache.UsedSlots);
    }

    [Fact]
    public async Task Refusals_by_the_system_are_dotnet_exceptions_that_name_the_problem()
    {
        var badSetting = await Assert.ThrowsAsync<ArgumentException>(() =>
            _client.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { TopP = 1.5f }));
        var unknownConversation = await Assert.ThrowsAsync<ChatServicesException>(() =>
            _client.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { ConversationId = Guid.NewGuid().ToString() }));
        var otherModel = await Assert.ThrowsAsync<ArgumentException>(() =>
            _client.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { ModelId = "not-the-served-model" }));

        Assert.Contains("top_p", badSetting.Message);
        Assert.Equal(StatusCode.NotFound, unknownConversation.StatusCode);
        Assert.Contains("not-the-served-model", otherModel.Message);
    }

    [Fact]
    public async Task The_tokenizer_client_encodes_counts_and_decodes_with_the_served_tokenizer()
    {
        const string text = "Hello, world! Ça va?";

        var ids = await _client.Tokenizer.EncodeAsync(text);
        var count = await _client.Tokenizer.CountTokensAsync(text);
        var decoded = await _client.Tokenizer.DecodeAsync(ids);

        Assert.NotEmpty(ids);
        Assert.Equal(ids.Count, count);
        Assert.Equal(text, decoded);
        Assert.Equal(count + 1, await _client.Tokenizer.CountTokensAsync(text, addSpecialTokens: true)); // Llama 2 adds BOS
    }
}
