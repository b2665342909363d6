using ChatServices.DialogueService.Conversations;
using ChatServices.DialogueService.Identity;
using ChatServices.ServiceDefaults.Identity;

namespace ChatServices.DialogueService.Tests.Conversations;

/// <summary>API keys in the store's database (schema version 2), on each real database.</summary>
public abstract partial class ConversationStoreTests
{
    private ApiKeyStore Keys => new(Store);

    private static NewApiKey UserKey(string owner, DateTimeOffset? expires = null) => new(owner, Roles.User, "laptop", 30, 5000, expires);

    [Fact]
    public async Task A_created_key_authenticates_by_its_hash_and_its_secret_is_stored_nowhere()
    {
        var (key, secret) = await Keys.CreateAsync(UserKey("alice"), default);

        Assert.StartsWith(ApiKeyFormat.Prefix, secret);
        var found = await new DatabaseApiKeys(Keys).ValidateAsync(ApiKeyFormat.Hash(secret), default);
        Assert.Equal(new ApiKeyIdentity("key:" + key.Id, "alice", Roles.User), found);
        Assert.Null(await Keys.FindActiveAsync(ApiKeyFormat.Hash(secret + "x"), default));

        // The row holds the hash and nothing of the key; a SQLite file holds it in no page either.
        var rows = await DumpTableAsync("api_keys");
        Assert.Contains(ApiKeyFormat.Hash(secret), rows);
        Assert.DoesNotContain(secret, rows);
        Assert.DoesNotContain(secret[ApiKeyFormat.Prefix.Length..][..16], rows);
        if (Store is SqliteConversationStore sqlite)
        {
            foreach (var file in Directory.GetFiles(Path.GetDirectoryName(sqlite.DatabasePath)!))
            {
                var bytes = await ReadSharedAsync(file);
                Assert.DoesNotContain(secret[ApiKeyFormat.Prefix.Length..], System.Text.Encoding.Latin1.GetString(bytes));
            }
        }
    }

    [Fact]
    public async Task A_revoked_key_stops_authenticating_and_is_listed_only_with_inactive_keys()
    {
        var (key, secret) = await Keys.CreateAsync(UserKey("bob"), default);
        var (other, _) = await Keys.CreateAsync(UserKey("bob"), default);

        var revoked = await Keys.RevokeAsync(key.Id, default);

        Assert.NotNull(revoked?.RevokedAt);
        Assert.Null(await Keys.FindActiveAsync(ApiKeyFormat.Hash(secret), default));
        Assert.Equal([other.Id], (await Keys.ListAsync("bob", includeInactive: false, default)).Select(k => k.Id));
        Assert.Equal([other.Id, key.Id], (await Keys.ListAsync("bob", includeInactive: true, default)).Select(k => k.Id));
        Assert.Null(await Keys.RevokeAsync(Guid.NewGuid(), default));
    }

    [Fact]
    public async Task An_expired_key_does_not_authenticate()
    {
        var (_, secret) = await Keys.CreateAsync(UserKey("carol", DateTimeOffset.UtcNow.AddMinutes(-1)), default);
        Assert.Null(await Keys.FindActiveAsync(ApiKeyFormat.Hash(secret), default));
        Assert.Empty(await Keys.ListAsync("carol", includeInactive: false, default));
    }

    [Fact]
    public async Task Rotating_a_key_replaces_it_with_the_same_owner_role_and_limits()
    {
        var (old, oldSecret) = await Keys.CreateAsync(UserKey("dan"), default);

        var (rotated, newSecret) = (await Keys.RotateAsync(old.Id, default))!.Value;

        Assert.NotEqual(old.Id, rotated.Id);
        Assert.NotEqual(oldSecret, newSecret);
        Assert.Equal((old.OwnerId, old.Role, old.Name, old.RequestsPerMinute, old.TokensPerMinute),
            (rotated.OwnerId, rotated.Role, rotated.Name, rotated.RequestsPerMinute, rotated.TokensPerMinute));
        Assert.Null(await Keys.FindActiveAsync(ApiKeyFormat.Hash(oldSecret), default));
        Assert.Equal(rotated.Id, (await Keys.FindActiveAsync(ApiKeyFormat.Hash(newSecret), default))?.Id);
        Assert.Null(await Keys.RotateAsync(old.Id, default)); // a revoked key is not rotated again
    }

    [Fact]
    public async Task Using_a_key_records_when_it_was_last_used()
    {
        var (key, secret) = await Keys.CreateAsync(UserKey("erin"), default);
        Assert.Null(key.LastUsedAt);

        await Keys.FindActiveAsync(ApiKeyFormat.Hash(secret), default);

        var listed = Assert.Single(await Keys.ListAsync("erin", includeInactive: false, default));
        Assert.NotNull(listed.LastUsedAt);
        Assert.True(listed.LastUsedAt >= key.CreatedAt);
    }

    /// <summary>Every value of every row of <paramref name="table"/>, as text.</summary>
    private async Task<string> DumpTableAsync(string table)
    {
        await using var connection = await Store.OpenDatabaseConnectionAsync(default);
        await using var select = SqlConversationStore.Command(connection, null, $"SELECT * FROM {table}");
        await using var reader = await select.ExecuteReaderAsync();
        var text = new System.Text.StringBuilder();
        while (await reader.ReadAsync())
            for (var i = 0; i < reader.FieldCount; i++) text.Append(reader.IsDBNull(i) ? "" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)).Append('|');
        return text.ToString();
    }

    private static async Task<byte[]> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }
}
