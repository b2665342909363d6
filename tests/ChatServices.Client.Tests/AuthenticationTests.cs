using ChatServices.Client.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServices.Client.Tests;

/// <summary>The <c>authorization: Bearer …</c> metadata, as the server receives it, from an API key or a token provider.</summary>
public sealed class AuthenticationTests : RecordingServerTests
{
    [Fact]
    public async Task An_api_key_is_sent_as_a_bearer_token_on_chat_and_tokenizer_calls()
    {
        using var client = new ChatServicesChatClient(Server.Address, apiKey: "csk_test_123");

        await client.GetResponseAsync([new(ChatRole.User, "hi")]);
        await client.Tokenizer.CountTokensAsync("hello");

        Assert.Equal(2, Server.Calls.Count);
        Assert.All(Server.Calls, c => Assert.Equal("Bearer csk_test_123", c.Authorization));
    }

    [Fact]
    public async Task The_typed_clients_handed_out_send_the_key_too()
    {
        using var client = new ChatServicesChatClient(Server.Address, apiKey: "csk_test_123");

        await client.GetService<Dialogue.DialogueClient>()!.CreateConversationAsync(new CreateConversationRequest());
        await client.GetService<Tokenizer.TokenizerClient>()!.EncodeAsync(new EncodeRequest { Text = "a" });

        Assert.Equal(2, Server.Calls.Count);
        Assert.All(Server.Calls, c => Assert.Equal("Bearer csk_test_123", c.Authorization));
    }

    [Fact]
    public async Task On_the_caller_s_channel_credentials_go_on_the_channel()
    {
        using var channel = GrpcChannel.ForAddress(Server.Address, new GrpcChannelOptions
        {
            Credentials = ChannelCredentials.Create(ChannelCredentials.Insecure, ChatServicesCredentials.FromApiKey("csk_channel")),
            UnsafeUseInsecureChannelCallCredentials = true, // loopback
        });
        using var client = new ChatServicesChatClient(channel);

        await client.GetResponseAsync([new(ChatRole.User, "hi")]);

        Assert.Equal("Bearer csk_channel", Assert.Single(Server.Calls).Authorization);
        Assert.Throws<ArgumentException>(() => new ChatServicesChatClient(channel, new ChatServicesClientOptions { ApiKey = "csk_x" }));
    }

    [Fact]
    public async Task Without_credentials_no_authorization_metadata_is_sent()
    {
        using var client = new ChatServicesChatClient(Server.Address);

        await client.GetResponseAsync([new(ChatRole.User, "hi")]);

        Assert.Null(Assert.Single(Server.Calls).Authorization);
    }

    [Fact]
    public async Task The_token_provider_is_asked_for_every_call_so_a_refreshed_token_is_used()
    {
        var issued = 0;
        using var client = new ChatServicesChatClient(new ChatServicesClientOptions
        {
            Address = Server.Address,
            AccessTokenProvider = _ => ValueTask.FromResult($"jwt-{Interlocked.Increment(ref issued)}"),
        });

        await client.GetResponseAsync([new(ChatRole.User, "hi")]);
        await client.GetResponseAsync([new(ChatRole.User, "hi")]);

        Assert.Equal(["Bearer jwt-1", "Bearer jwt-2"], Server.Calls.Select(c => c.Authorization));
    }

    [Fact]
    public async Task Clients_registered_with_dependency_injection_send_the_key_on_every_call()
    {
        var services = new ServiceCollection();
        services.AddChatServicesClient(o => { o.Address = Server.Address; o.ApiKey = "csk_di"; });
        await using var provider = services.BuildServiceProvider();

        await provider.GetRequiredService<IChatClient>().GetResponseAsync([new(ChatRole.User, "hi")]);
        await provider.GetRequiredService<Dialogue.DialogueClient>().CreateConversationAsync(new CreateConversationRequest());
        await provider.GetRequiredService<ChatServicesTokenizer>().EncodeAsync("a");

        Assert.Equal(["/chat.v1.Dialogue/Chat", "/chat.v1.Dialogue/CreateConversation", "/chat.v1.Tokenizer/Encode"], Server.Calls.Select(c => c.Method));
        Assert.All(Server.Calls, c => Assert.Equal("Bearer csk_di", c.Authorization)); // once each, not twice
    }

    [Fact]
    public async Task Dependency_injection_asks_the_token_provider_for_every_call()
    {
        var issued = 0;
        var services = new ServiceCollection();
        services.AddChatServicesClient(o =>
        {
            o.Address = Server.Address;
            o.AccessTokenProvider = _ => ValueTask.FromResult($"jwt-{Interlocked.Increment(ref issued)}");
        });
        await using var provider = services.BuildServiceProvider();
        var chat = provider.GetRequiredService<IChatClient>();

        await chat.GetResponseAsync([new(ChatRole.User, "hi")]);
        await chat.GetResponseAsync([new(ChatRole.User, "hi")]);

        Assert.Equal(["Bearer jwt-1", "Bearer jwt-2"], Server.Calls.Select(c => c.Authorization));
    }

    [Fact]
    public void Credentials_over_cleartext_to_another_machine_are_refused_unless_allowed()
    {
        var refused = Assert.Throws<ArgumentException>(() => new ChatServicesChatClient("http://chat.example.com:50051", apiKey: "csk_x"));
        using var allowed = new ChatServicesChatClient(new ChatServicesClientOptions
        {
            Address = new Uri("http://chat.example.com:50051"), ApiKey = "csk_x", AllowCredentialsOverCleartext = true,
        });
        using var tls = new ChatServicesChatClient("https://chat.example.com", apiKey: "csk_x");
        using var loopback = new ChatServicesChatClient("http://localhost:50051", apiKey: "csk_x");

        Assert.Contains("https://", refused.Message);
    }

    [Fact]
    public void Settings_that_cannot_work_are_refused_when_the_client_is_made()
    {
        Assert.Throws<ArgumentException>(() => new ChatServicesChatClient(new ChatServicesClientOptions
        {
            Address = Server.Address, ApiKey = "csk_a", AccessTokenProvider = _ => ValueTask.FromResult("t"),
        }));
        Assert.Throws<ArgumentException>(() => new ChatServicesChatClient(new ChatServicesClientOptions { Address = Server.Address, ApiKey = " " }));
        Assert.Throws<ArgumentException>(() => new ChatServicesChatClient(new ChatServicesClientOptions()));
        Assert.Throws<ArgumentException>(() => new ChatServicesChatClient(new ChatServicesClientOptions { Address = Server.Address, MaxRetries = -1 }));
    }
}
