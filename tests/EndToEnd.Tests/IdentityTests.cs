using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults.Identity;
using Grpc.Core;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// Identity on DialogueService's gRPC API, as tenants and backend teams meet it: the owner is the authenticated
/// caller, never a request field. A tenant cannot reach another tenant's conversation by naming it, by forging
/// <c>owner_id</c>, with someone else's role, or with a JWT the service must not accept.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class IdentityTests(ChatSystemFixture fixture)
{
    private ChatSystem System => fixture.System;

    private static readonly GenerationSettings Short = new() { MaxTokens = 2, Temperature = 0 };

    [Fact]
    public async Task A_user_key_owns_what_it_creates_and_another_tenant_can_touch_none_of_it()
    {
        var alice = System.DialogueClientWith(TestCredentials.AliceKey);
        var bob = System.DialogueClientWith(TestCredentials.BobKey);
        var conversation = await alice.CreateConversationAsync(new CreateConversationRequest { Title = "alice's" });
        var id = conversation.Id;

        // Bob naming the conversation sees nothing of it: the same answer as for an id that does not exist.
        Assert.DoesNotContain((await bob.ListConversationsAsync(new ListConversationsRequest())).Conversations, c => c.Id == id);
        await AssertStatus(StatusCode.NotFound, bob.GetConversationAsync(new GetConversationRequest { ConversationId = id }).ResponseAsync);
        await AssertStatus(StatusCode.NotFound, bob.ChatToEndAsync(new ChatRequest { ConversationId = id, UserMessage = "hi", Settings = Short }));
        await AssertStatus(StatusCode.NotFound, bob.ChatToEndAsync(new ChatRequest { ConversationId = id, Regenerate = true, Settings = Short }));
        await AssertStatus(StatusCode.NotFound, bob.RenameConversationAsync(new RenameConversationRequest { ConversationId = id, Title = "mine" }).ResponseAsync);
        await AssertStatus(StatusCode.NotFound, bob.DeleteConversationAsync(new DeleteConversationRequest { ConversationId = id }).ResponseAsync);
        await AssertStatus(StatusCode.NotFound, bob.AppendMessageAsync(new AppendMessageRequest
        {
            ConversationId = id, Message = new ChatMessage { Role = "user", Content = "hi" },
        }).ResponseAsync);

        // Forging owner_id = alice is refused outright, on every call.
        await AssertStatus(StatusCode.PermissionDenied, bob.ListConversationsAsync(new ListConversationsRequest { OwnerId = "alice" }).ResponseAsync);
        await AssertStatus(StatusCode.PermissionDenied, bob.GetConversationAsync(new GetConversationRequest { OwnerId = "alice", ConversationId = id }).ResponseAsync);
        await AssertStatus(StatusCode.PermissionDenied, bob.ChatToEndAsync(new ChatRequest { OwnerId = "alice", ConversationId = id, UserMessage = "hi", Settings = Short }));
        await AssertStatus(StatusCode.PermissionDenied, bob.RenameConversationAsync(new RenameConversationRequest { OwnerId = "alice", ConversationId = id, Title = "x" }).ResponseAsync);
        await AssertStatus(StatusCode.PermissionDenied, bob.DeleteConversationAsync(new DeleteConversationRequest { OwnerId = "alice", ConversationId = id }).ResponseAsync);
        await AssertStatus(StatusCode.PermissionDenied, bob.CreateConversationAsync(new CreateConversationRequest { OwnerId = "alice" }).ResponseAsync);

        // Alice still has it, untouched, and may name herself.
        var stored = await alice.GetConversationAsync(new GetConversationRequest { OwnerId = "alice", ConversationId = id, IncludeMessages = true });
        Assert.Equal("alice's", stored.Title);
        Assert.Empty(stored.Messages);
    }

    [Fact]
    public async Task A_service_key_acts_for_the_owner_it_names_and_sees_the_same_conversations()
    {
        var alice = System.DialogueClientWith(TestCredentials.AliceKey);
        var conversation = await alice.CreateConversationAsync(new CreateConversationRequest { Title = "via service" });

        var service = System.DialogueClient;
        var read = await service.GetConversationAsync(new GetConversationRequest { OwnerId = "alice", ConversationId = conversation.Id });
        Assert.Equal("via service", read.Title);
        await AssertStatus(StatusCode.NotFound, service.GetConversationAsync(new GetConversationRequest { OwnerId = "bob", ConversationId = conversation.Id }).ResponseAsync);
    }

    [Fact]
    public async Task Without_credential_loopback_acts_as_local_and_may_not_name_another_owner()
    {
        var anonymous = System.DialogueClientWith(null);
        var mine = await anonymous.CreateConversationAsync(new CreateConversationRequest { Title = "local's" });
        var named = await anonymous.GetConversationAsync(new GetConversationRequest { OwnerId = "local", ConversationId = mine.Id });
        Assert.Equal("local's", named.Title);

        await AssertStatus(StatusCode.PermissionDenied, anonymous.ListConversationsAsync(new ListConversationsRequest { OwnerId = "alice" }).ResponseAsync);
        await AssertStatus(StatusCode.PermissionDenied, anonymous.CreateConversationAsync(new CreateConversationRequest { OwnerId = "alice" }).ResponseAsync);
    }

    public static TheoryData<string, string> RefusedCredentials => new()
    {
        { "unknown API key", ApiKeyFormat.Generate() },
        { "not a credential", "let-me-in" },
        { "JWT from another issuer", TestCredentials.Jwt("alice", issuer: "https://evil.example.test") },
        { "JWT for another audience", TestCredentials.Jwt("alice", audience: "someone-else") },
        { "JWT signed with another key", TestCredentials.Jwt("alice", signingKey: TestCredentials.ForeignKey) },
        { "expired JWT", TestCredentials.Jwt("alice", expiresIn: TimeSpan.FromMinutes(-5)) },
        { "unsigned JWT", UnsignedJwt("alice") },
    };

    [Theory]
    [MemberData(nameof(RefusedCredentials))]
    public async Task A_bad_credential_is_unauthenticated_even_from_loopback(string what, string credential)
    {
        var client = System.DialogueClientWith(credential);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.ListConversationsAsync(new ListConversationsRequest()).ResponseAsync);
        Assert.True(e.StatusCode == StatusCode.Unauthenticated, $"{what}: {e.Status}");
        await AssertStatus(StatusCode.Unauthenticated, client.ChatToEndAsync(new ChatRequest { Messages = { new ChatMessage { Role = "user", Content = "hi" } }, Settings = Short }));
    }

    [Fact]
    public async Task A_valid_JWT_is_its_subject_and_without_a_service_role_cannot_act_for_others()
    {
        var alice = System.DialogueClientWith(TestCredentials.AliceKey);
        var conversation = await alice.CreateConversationAsync(new CreateConversationRequest { Title = "jwt" });

        var aliceByToken = System.DialogueClientWith(TestCredentials.Jwt("alice"));
        var read = await aliceByToken.GetConversationAsync(new GetConversationRequest { ConversationId = conversation.Id });
        Assert.Equal("jwt", read.Title);

        var bobByToken = System.DialogueClientWith(TestCredentials.Jwt("bob"));
        await AssertStatus(StatusCode.NotFound, bobByToken.GetConversationAsync(new GetConversationRequest { ConversationId = conversation.Id }).ResponseAsync);
        await AssertStatus(StatusCode.PermissionDenied, bobByToken.GetConversationAsync(new GetConversationRequest { OwnerId = "alice", ConversationId = conversation.Id }).ResponseAsync);

        // A token with an unknown role is admitted to nothing.
        var stranger = System.DialogueClientWith(TestCredentials.Jwt("bob", role: "guest"));
        await AssertStatus(StatusCode.PermissionDenied, stranger.ListConversationsAsync(new ListConversationsRequest()).ResponseAsync);
    }

    [Fact]
    public async Task A_tenant_cannot_call_InferenceService_directly()
    {
        var request = new GenerateRequest { MaxNewTokens = 2 };
        request.PromptTokenIds.AddRange([1, 2, 3]);
        // Neither with no credential (InferenceService does not serve anonymous loopback callers here) ...
        await AssertStatus(StatusCode.Unauthenticated, System.InferenceClientWith(null).GetModelInfoAsync(new GetModelInfoRequest()).ResponseAsync);
        // ... nor with a tenant key DialogueService accepts, which InferenceService does not know.
        using var call = System.InferenceClientWith(TestCredentials.AliceKey).Generate(request);
        await AssertStatus(StatusCode.Unauthenticated, call.ResponseStream.MoveNext());
        // An operator may.
        Assert.True((await System.InferenceClient.GetModelInfoAsync(new GetModelInfoRequest())).VocabSize > 0);
    }

    [Fact]
    public async Task A_Grpc_Net_Client_with_call_credentials_authenticates_as_in_the_README()
    {
        var credentials = CallCredentials.FromInterceptor((_, metadata) =>
        {
            metadata.Add("authorization", "Bearer " + TestCredentials.AliceKey);
            return Task.CompletedTask;
        });
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(System.Dialogue.Address, new Grpc.Net.Client.GrpcChannelOptions
        {
            Credentials = ChannelCredentials.Create(ChannelCredentials.Insecure, credentials),
            UnsafeUseInsecureChannelCallCredentials = true,
        });
        var dialogue = new Dialogue.DialogueClient(channel);
        var conversation = await dialogue.CreateConversationAsync(new CreateConversationRequest { Title = "Support" });
        var asAlice = await System.DialogueClientWith(TestCredentials.AliceKey).GetConversationAsync(new GetConversationRequest { ConversationId = conversation.Id });
        Assert.Equal("Support", asAlice.Title);
    }

    private static string UnsignedJwt(string subject)
    {
        static string Part(string json) => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(json);
        var expires = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        return $"{Part("""{"alg":"none","typ":"JWT"}""")}.{Part($$"""{"sub":"{{subject}}","iss":"{{TestCredentials.Issuer}}","aud":"{{TestCredentials.Audience}}","exp":{{expires}}}""")}.";
    }

    private static async Task AssertStatus(StatusCode expected, Task call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(expected, e.StatusCode);
    }
}
