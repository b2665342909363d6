using ChatServices.Client.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.AI;

namespace ChatServices.Client.Tests;

/// <summary>How the Chat stream becomes IChatClient updates and responses, and what GetService hands out.</summary>
public sealed class ChatResponseTests : RecordingServerTests
{
    [Fact]
    public async Task A_streamed_reply_comes_as_started_text_finish_and_usage_updates()
    {
        var updates = await Client.GetStreamingResponseAsync([new(ChatRole.User, "hi")]).ToListAsync();

        Assert.Equal(5, updates.Count);
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.All(updates, u => Assert.Equal("test-model", u.ModelId));
        Assert.Equal(5, updates[0].AdditionalProperties?["prompt_tokens"]);
        Assert.Equal(["", "Hello", " world", "", ""], updates.Select(u => u.Text));
        Assert.Equal(ChatFinishReason.Stop, updates[3].FinishReason);
        var usage = Assert.IsType<UsageContent>(Assert.Single(updates[4].Contents)).Details;
        Assert.Equal((5L, 2L, 7L, 3L), (usage.InputTokenCount, usage.OutputTokenCount, usage.TotalTokenCount, usage.CachedInputTokenCount));
        Assert.IsType<ChatEvent>(updates[1].RawRepresentation);
    }

    [Fact]
    public async Task A_whole_response_has_the_text_the_finish_reason_and_the_usage()
    {
        var response = await Client.GetResponseAsync([new(ChatRole.User, "hi")]);

        Assert.Equal("Hello world", response.Text);
        Assert.Equal(ChatRole.Assistant, Assert.Single(response.Messages).Role);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(7, response.Usage?.TotalTokenCount);
        Assert.Equal(3, response.Usage?.CachedInputTokenCount);
        Assert.Null(response.ConversationId); // stateless: nothing stored
    }

    [Theory]
    [InlineData("length")]
    [InlineData("cancelled")]
    public async Task Finish_reasons_keep_the_service_s_meaning(string reason)
    {
        Server.Chat = async (request, output, _) =>
        {
            await output.WriteAsync(new ChatEvent { Started = new ChatStarted { Model = "m" } });
            await output.WriteAsync(new ChatEvent { Finished = new ChatFinished { FinishReason = reason } });
        };

        var response = await Client.GetResponseAsync([new(ChatRole.User, "hi")]);

        Assert.Equal(reason, response.FinishReason?.Value);
        Assert.Equal(reason == "length" ? ChatFinishReason.Length : new ChatFinishReason("cancelled"), response.FinishReason);
    }

    [Fact]
    public void GetService_returns_the_typed_grpc_clients_the_channel_and_the_metadata()
    {
        Assert.Same(Client, Client.GetService<ChatServicesChatClient>());
        Assert.Same(Client.Dialogue, Client.GetService<Dialogue.DialogueClient>());
        Assert.Same(Client.Tokenizer, Client.GetService<ChatServicesTokenizer>());
        Assert.Same(Client.Tokenizer.Client, Client.GetService<Tokenizer.TokenizerClient>());
        Assert.NotNull(Client.GetService<GrpcChannel>());
        Assert.NotNull(Client.GetService<CallInvoker>());
        var metadata = Client.GetService<ChatClientMetadata>();
        Assert.Equal(ChatServicesChatClient.ProviderName, metadata?.ProviderName);
        Assert.Equal(Server.Address, metadata?.ProviderUri);
        Assert.Null(Client.GetService<ChatClientMetadata>("some key"));
        Assert.Null(Client.GetService<string>());
    }

    [Fact]
    public async Task Conversation_calls_carry_the_client_s_owner_and_the_typed_client_reaches_the_same_service()
    {
        using var client = new ChatServicesChatClient(new ChatServicesClientOptions { Address = Server.Address, OwnerId = "end-user-7", ApiKey = "csk_svc" });

        var conversation = await client.CreateConversationAsync("Notes", "Be brief.");
        await client.Dialogue.CreateConversationAsync(new CreateConversationRequest { Title = "Raw" });

        Assert.Equal("Notes", conversation.Title);
        var calls = Server.CallsTo("/chat.v1.Dialogue/CreateConversation");
        var viaHelper = Assert.IsType<CreateConversationRequest>(calls[0].Request);
        Assert.Equal(("end-user-7", "Notes", "Be brief.", "Bearer csk_svc"), (viaHelper.OwnerId, viaHelper.Title, viaHelper.SystemPrompt, calls[0].Authorization));
        Assert.Equal("Raw", Assert.IsType<CreateConversationRequest>(calls[1].Request).Title);
    }

    [Fact]
    public async Task A_client_on_the_caller_s_channel_uses_it_and_leaves_it_open()
    {
        using var channel = GrpcChannel.ForAddress(Server.Address);
        using (var client = new ChatServicesChatClient(channel))
            Assert.Equal("Hello world", (await client.GetResponseAsync([new(ChatRole.User, "hi")])).Text);

        using var again = new ChatServicesChatClient(channel);
        Assert.Equal("Hello world", (await again.GetResponseAsync([new(ChatRole.User, "hi")])).Text);
        Assert.Throws<ArgumentException>(() => new ChatServicesChatClient(channel, new ChatServicesClientOptions { Address = Server.Address }));
    }
}
