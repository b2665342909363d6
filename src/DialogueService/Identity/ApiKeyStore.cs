using System.Collections.Concurrent;
using System.Data.Common;
using ChatServices.DialogueService.Conversations;
using ChatServices.ServiceDefaults.Identity;

namespace ChatServices.DialogueService.Identity;

/// <summary>A key as stored: everything but the key (of which only the SHA-256 is kept).</summary>
public sealed record StoredApiKey(
    Guid Id, string OwnerId, string Role, string Name, int RequestsPerMinute, int TokensPerMinute,
    DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt)
{
    public bool IsActiveAt(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);
}

/// <summary>What a new key is made with.</summary>
public sealed record NewApiKey(string OwnerId, string Role, string Name, int RequestsPerMinute, int TokensPerMinute, DateTimeOffset? ExpiresAt);

/// <summary>
/// API keys in DialogueService's database (table <c>api_keys</c>, schema version 2, SQLite or PostgreSQL — the
/// conversation store's database, so every replica sees the same keys). Only the key's SHA-256 is stored; the key
/// is generated here, returned once to the caller, and neither kept nor logged.
/// </summary>
/// <remarks>
/// <c>last_used_at</c> is written at most once a minute per key and process (<see cref="TouchInterval"/>), so that
/// authenticating a call does not cost a write each time.
/// </remarks>
public sealed class ApiKeyStore(IConversationStore conversations)
{
    public static readonly TimeSpan TouchInterval = TimeSpan.FromMinutes(1);
    private const string Columns =
        "id, owner_id, role, name, requests_per_minute, tokens_per_minute, created_at, last_used_at, expires_at, revoked_at";

    private readonly SqlConversationStore _db = conversations as SqlConversationStore
        ?? throw new InvalidOperationException("API keys live in the SQL conversation store's database.");
    private readonly ConcurrentDictionary<Guid, DateTimeOffset> _touched = new();

    /// <summary>Creates a key; the returned secret is the only copy of the key there will ever be.</summary>
    public Task<(StoredApiKey Key, string Secret)> CreateAsync(NewApiKey key, CancellationToken cancellationToken) =>
        _db.InWriteTransactionAsync((connection, transaction) => InsertAsync(connection, transaction, key, cancellationToken), cancellationToken);

    /// <summary>Keys, newest first; only active ones unless <paramref name="includeInactive"/>.</summary>
    public async Task<IReadOnlyList<StoredApiKey>> ListAsync(string? ownerId, bool includeInactive, CancellationToken cancellationToken)
    {
        await using var connection = await _db.OpenDatabaseConnectionAsync(cancellationToken);
        var sql = $"SELECT {Columns} FROM api_keys" + (ownerId is null ? "" : " WHERE owner_id = @owner") + " ORDER BY created_at DESC, id";
        await using var select = SqlConversationStore.Command(connection, null, sql);
        if (ownerId is not null) SqlConversationStore.AddParameter(select, "@owner", ownerId);
        var keys = await ReadAllAsync(select, cancellationToken);
        var now = _db.UtcNow();
        return includeInactive ? keys : [.. keys.Where(k => k.IsActiveAt(now))];
    }

    /// <summary>Revokes a key (again: no change); null when there is no such key.</summary>
    public Task<StoredApiKey?> RevokeAsync(Guid id, CancellationToken cancellationToken) =>
        _db.InWriteTransactionAsync(async (connection, transaction) =>
        {
            await using var update = SqlConversationStore.Command(connection, transaction,
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, @now) WHERE id = @id");
            SqlConversationStore.AddParameter(update, "@now", _db.TimestampParameter(_db.UtcNow()));
            SqlConversationStore.AddParameter(update, "@id", _db.IdParameter(id));
            await update.ExecuteNonQueryAsync(cancellationToken);
            return await FindAsync(connection, transaction, "id", _db.IdParameter(id), cancellationToken);
        }, cancellationToken);

    /// <summary>
    /// Replaces an active key by a new one with the same owner, role, name, limits and expiry, and revokes the old
    /// one, in one transaction; null when there is no such active key.
    /// </summary>
    public Task<(StoredApiKey Key, string Secret)?> RotateAsync(Guid id, CancellationToken cancellationToken) =>
        _db.InWriteTransactionAsync<(StoredApiKey, string)?>(async (connection, transaction) =>
        {
            var old = await FindAsync(connection, transaction, "id", _db.IdParameter(id), cancellationToken);
            if (old is null || !old.IsActiveAt(_db.UtcNow())) return null;
            await using (var revoke = SqlConversationStore.Command(connection, transaction, "UPDATE api_keys SET revoked_at = @now WHERE id = @id"))
            {
                SqlConversationStore.AddParameter(revoke, "@now", _db.TimestampParameter(_db.UtcNow()));
                SqlConversationStore.AddParameter(revoke, "@id", _db.IdParameter(id));
                await revoke.ExecuteNonQueryAsync(cancellationToken);
            }
            return await InsertAsync(connection, transaction,
                new NewApiKey(old.OwnerId, old.Role, old.Name, old.RequestsPerMinute, old.TokensPerMinute, old.ExpiresAt), cancellationToken);
        }, cancellationToken);

    /// <summary>The key with this id (active or not), or null.</summary>
    public async Task<StoredApiKey?> FindByIdAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await _db.OpenDatabaseConnectionAsync(cancellationToken);
        return await FindAsync(connection, null, "id", _db.IdParameter(id), cancellationToken);
    }

    /// <summary>The active key with this SHA-256 (lowercase hex), or null; records its use.</summary>
    public async Task<StoredApiKey?> FindActiveAsync(string keySha256, CancellationToken cancellationToken)
    {
        StoredApiKey? key;
        await using (var connection = await _db.OpenDatabaseConnectionAsync(cancellationToken))
            key = await FindAsync(connection, null, "key_sha256", keySha256, cancellationToken);
        var now = _db.UtcNow();
        if (key is null || !key.IsActiveAt(now)) return null;
        await TouchAsync(key.Id, now, cancellationToken);
        return key;
    }

    private async Task TouchAsync(Guid id, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_touched.TryGetValue(id, out var last) && now - last < TouchInterval) return;
        _touched[id] = now;
        await using var connection = await _db.OpenDatabaseConnectionAsync(cancellationToken);
        await using var update = SqlConversationStore.Command(connection, null, "UPDATE api_keys SET last_used_at = @now WHERE id = @id");
        SqlConversationStore.AddParameter(update, "@now", _db.TimestampParameter(now));
        SqlConversationStore.AddParameter(update, "@id", _db.IdParameter(id));
        await update.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<(StoredApiKey, string)> InsertAsync(DbConnection connection, DbTransaction transaction, NewApiKey key, CancellationToken cancellationToken)
    {
        var secret = ApiKeyFormat.Generate();
        var stored = new StoredApiKey(Guid.CreateVersion7(), key.OwnerId, key.Role, key.Name, key.RequestsPerMinute, key.TokensPerMinute,
            _db.UtcNow(), null, key.ExpiresAt, null);
        await using var insert = SqlConversationStore.Command(connection, transaction,
            "INSERT INTO api_keys (id, key_sha256, owner_id, role, name, requests_per_minute, tokens_per_minute, created_at, expires_at) " +
            "VALUES (@id, @hash, @owner, @role, @name, @rpm, @tpm, @created, @expires)");
        SqlConversationStore.AddParameter(insert, "@id", _db.IdParameter(stored.Id));
        SqlConversationStore.AddParameter(insert, "@hash", ApiKeyFormat.Hash(secret));
        SqlConversationStore.AddParameter(insert, "@owner", stored.OwnerId);
        SqlConversationStore.AddParameter(insert, "@role", stored.Role);
        SqlConversationStore.AddParameter(insert, "@name", stored.Name);
        SqlConversationStore.AddParameter(insert, "@rpm", stored.RequestsPerMinute);
        SqlConversationStore.AddParameter(insert, "@tpm", stored.TokensPerMinute);
        SqlConversationStore.AddParameter(insert, "@created", _db.TimestampParameter(stored.CreatedAt));
        SqlConversationStore.AddParameter(insert, "@expires", stored.ExpiresAt is { } expires ? _db.TimestampParameter(expires) : null);
        await insert.ExecuteNonQueryAsync(cancellationToken);
        return (stored, secret);
    }

    /// <summary>The key whose unique <paramref name="column"/> (id or key_sha256) has <paramref name="value"/>.</summary>
    private async Task<StoredApiKey?> FindAsync(DbConnection connection, DbTransaction? transaction, string column, object value, CancellationToken cancellationToken)
    {
        await using var select = SqlConversationStore.Command(connection, transaction, $"SELECT {Columns} FROM api_keys WHERE {column} = @value");
        SqlConversationStore.AddParameter(select, "@value", value);
        return (await ReadAllAsync(select, cancellationToken)).SingleOrDefault();
    }

    private async Task<List<StoredApiKey>> ReadAllAsync(DbCommand select, CancellationToken cancellationToken)
    {
        var keys = new List<StoredApiKey>();
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            keys.Add(new StoredApiKey(
                _db.GetId(reader, 0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                Convert.ToInt32(reader.GetValue(4)), Convert.ToInt32(reader.GetValue(5)), _db.GetTimestamp(reader, 6),
                Optional(reader, 7), Optional(reader, 8), Optional(reader, 9)));
        }
        return keys;
    }

    private DateTimeOffset? Optional(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : _db.GetTimestamp(reader, ordinal);
}

/// <summary>Authenticates the API keys kept in the database (after those in configuration).</summary>
public sealed class DatabaseApiKeys(ApiKeyStore keys) : IApiKeyValidator
{
    public async ValueTask<ApiKeyIdentity?> ValidateAsync(string keySha256, CancellationToken cancellationToken) =>
        await keys.FindActiveAsync(keySha256, cancellationToken) is { } key ? new ApiKeyIdentity("key:" + key.Id, key.OwnerId, key.Role) : null;
}
