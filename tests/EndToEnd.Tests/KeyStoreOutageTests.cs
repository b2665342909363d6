using ChatServices.DialogueService.Tests.Conversations;
using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using ChatServices.Tests.Shared;
using Grpc.Core;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// DialogueService keeps API keys in its database. When that database stops answering, a database key cannot be
/// checked: the call is UNAVAILABLE (retry later), not UNAUTHENTICATED (the key may well be valid), and keys from
/// configuration keep working. Once the database answers again, so does the key.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class KeyStoreOutageTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_database_key_is_unavailable_while_the_database_is_down_and_works_again_after()
    {
        var (database, connectionString) = await postgres.CreateDatabaseAsync("keys_");
        await using var system = await ChatSystem.StartAsync(connectionString);

        var created = await new Admin.AdminClient(system.DialogueChannel.WithCredential(TestCredentials.AdminKey))
            .CreateKeyAsync(new CreateKeyRequest { OwnerId = "outage-tenant", Role = "user", Name = "outage" });
        var tenant = system.DialogueClientWith(created.Secret);
        await tenant.ListConversationsAsync(new ListConversationsRequest());

        // The database refuses connections, and the ones the service holds are ended.
        await postgres.ExecuteAsync($"ALTER DATABASE {database} ALLOW_CONNECTIONS false");
        await postgres.ExecuteAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'");

        var refused = await Assert.ThrowsAsync<RpcException>(() => tenant.ListConversationsAsync(new ListConversationsRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Contains("key store is unavailable", refused.Status.Detail);
        // A key from configuration does not need the database to be recognised.
        var configured = await Assert.ThrowsAsync<RpcException>(() =>
            system.DialogueClient.ListConversationsAsync(new ListConversationsRequest { OwnerId = "someone" }).ResponseAsync);
        Assert.NotEqual(StatusCode.Unauthenticated, configured.StatusCode);

        await postgres.ExecuteAsync($"ALTER DATABASE {database} ALLOW_CONNECTIONS true");
        await Wait.UntilAsync(async () =>
        {
            try
            {
                await tenant.ListConversationsAsync(new ListConversationsRequest());
                return true;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "the key was accepted again after the database came back");
        Assert.DoesNotContain(created.Secret[ServiceDefaults.Identity.ApiKeyFormat.Prefix.Length..], system.Logs);
    }
}
