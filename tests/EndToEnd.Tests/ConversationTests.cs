using ChatServices.EndToEnd.Tests.Infrastructure;
using Grpc.Core;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// Multi-turn conversations through DialogueService and InferenceService, as a backend team calls them over gRPC,
/// with the history stored in SQLite.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class ConversationTests(ChatSystemFixture fixture)
{
    private ChatSystem System => fixture.System;

    [Fact]
    public async Task A_multi_turn_conversation_streams_is_stored_and_reuses_the_cached_history()
    {
        var client = System.DialogueClient;
        var conversation = await client.CreateConversationAsync(new CreateConversationRequest { OwnerId = "alice", Title = "Trip", SystemPrompt = "You are a travel agent." });
        var settings = new GenerationSettings { MaxTokens = 12, Temperature = 0 };

        var first = await client.ChatToEndAsync(new ChatRequest { OwnerId = "alice", ConversationId = conversation.Id, UserMessage = "Plan a day in Lisbon.", Settings = settings });
        var second = await client.ChatToEndAsync(new ChatRequest { OwnerId = "alice", ConversationId = conversation.Id, UserMessage = "And the evening?", Settings = settings });

        Assert.Equal(conversation.Id, first.Started.ConversationId);
        Assert.True(second.Started.PromptTokens > first.Started.PromptTokens + first.Usage.CompletionTokens,
            "the second turn's prompt carries the first turn");
        // Chat re-sends its history: the second turn's prompt starts with the first turn's prompt and reply, whose
        // KV InferenceService kept (the first prompt's last token may tokenize differently once text follows it).
        Assert.True(second.Usage.CachedPromptTokens >= first.Started.PromptTokens - 1,
            $"cached {second.Usage.CachedPromptTokens} of {second.Started.PromptTokens} prompt tokens\n{System.Logs}");

        var stored = await client.GetConversationAsync(new GetConversationRequest { OwnerId = "alice", ConversationId = conversation.Id, IncludeMessages = true });
        Assert.Equal(["user", "assistant", "user", "assistant"], stored.Messages.Select(m => m.Role));
        Assert.Equal("Plan a day in Lisbon.", stored.Messages[0].Content);
        Assert.Equal(first.Text, stored.Messages[1].Content);
        Assert.Equal(second.Text, stored.Messages[3].Content);
        Assert.All(stored.Messages, m => Assert.Equal(MessageStatus.Complete, m.Status));
        Assert.Equal([1L, 2, 3, 4], stored.Messages.Select(m => m.Sequence));
    }

    [Fact]
    public async Task Another_owner_can_neither_read_nor_continue_the_conversation()
    {
        var client = System.DialogueClient;
        var conversation = await client.CreateConversationAsync(new CreateConversationRequest { OwnerId = "bob" });

        var read = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetConversationAsync(new GetConversationRequest { OwnerId = "mallory", ConversationId = conversation.Id }).ResponseAsync);
        var chat = await Assert.ThrowsAsync<RpcException>(() =>
            client.ChatToEndAsync(new ChatRequest { OwnerId = "mallory", ConversationId = conversation.Id, UserMessage = "hi" }));

        Assert.Equal(StatusCode.NotFound, read.StatusCode);
        Assert.Equal(StatusCode.NotFound, chat.StatusCode);
    }

    [Fact]
    public async Task Greedy_replies_are_identical_for_identical_requests()
    {
        var request = new ChatRequest
        {
            OwnerId = "carol",
            Messages = { new ChatMessage { Role = "user", Content = "Name three colours." } },
            Settings = new GenerationSettings { MaxTokens = 16, Temperature = 0 },
        };
        var a = await System.DialogueClient.ChatToEndAsync(request);
        var b = await System.DialogueClient.ChatToEndAsync(request);
        Assert.Equal(a.Text, b.Text);
        Assert.Equal(16, a.Usage.CompletionTokens);
        Assert.Equal("length", Assert.Single(a.Finished).FinishReason);
    }

    [Fact]
    public async Task A_client_that_cancels_mid_stream_frees_the_inference_capacity_and_the_partial_reply_is_kept()
    {
        var client = System.DialogueClient;
        var conversation = await client.CreateConversationAsync(new CreateConversationRequest { OwnerId = "dan" });
        using var cancel = new CancellationTokenSource();
        using var call = client.Chat(new ChatRequest
        {
            OwnerId = "dan", ConversationId = conversation.Id, UserMessage = "Tell me a long story.",
            Settings = new GenerationSettings { MaxTokens = 900, Temperature = 0 },
        }, cancellationToken: cancel.Token);

        var deltas = 0;
        await foreach (var e in call.ResponseStream.ReadAllAsync())
            if (e.Delta is not null && e.Delta.Text.Length > 0 && ++deltas == 3) break;
        var during = await System.InferenceClient.GetModelInfoAsync(new GetModelInfoRequest());
        await cancel.CancelAsync();

        Assert.Equal(1u, during.Running + during.Waiting);
        var after = await System.InferenceClient.WaitUntilIdleAsync();
        Assert.Equal(0u, after.Running);
        Assert.Equal(0u, after.KvCache.UsedSlots);

        Conversation stored = null!;
        for (var i = 0; i < 50; i++)
        {
            stored = await client.GetConversationAsync(new GetConversationRequest { OwnerId = "dan", ConversationId = conversation.Id, IncludeMessages = true });
            if (stored.Messages.Count == 2 && stored.Messages[1].Status != MessageStatus.Unspecified) break;
            await Task.Delay(100);
        }
        Assert.Equal(MessageStatus.Cancelled, stored.Messages[1].Status);
        Assert.False(string.IsNullOrEmpty(stored.Messages[1].Content));
    }

    [Fact]
    public async Task Bad_settings_are_refused_with_invalid_argument_naming_the_field()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => System.DialogueClient.ChatToEndAsync(new ChatRequest
        {
            OwnerId = "erin",
            Messages = { new ChatMessage { Role = "user", Content = "hi" } },
            Settings = new GenerationSettings { TopP = 1.5f },
        }));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("settings.top_p", error.Status.Detail);
    }
}
