using System.Globalization;
using ChatServices.DialogueService.Conversations;
using ChatServices.ServiceDefaults.Identity;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace ChatServices.DialogueService.Identity;

/// <summary>Limits for caller keys that set none of their own (configuration section <c>Dialogue:Limits</c>).</summary>
public sealed class KeyLimitOptions
{
    /// <summary>Chat requests per minute and key; 0: unlimited.</summary>
    public int RequestsPerMinute { get; set; }

    /// <summary>Prompt plus completion tokens per minute and key; 0: unlimited.</summary>
    public int TokensPerMinute { get; set; }
}

/// <summary>Whose chat this is, for limits and usage: the caller's key and the owner it works for.</summary>
public sealed record CallMeter(string KeyId, string OwnerId, long WindowStart);

/// <summary>One key's usage on one UTC day.</summary>
public sealed record KeyUsage(string KeyId, string OwnerId, string Day, long Requests, long PromptTokens, long CompletionTokens);

/// <summary>
/// Per-key rate limits and usage, with their state in DialogueService's database (tables <c>rate_windows</c> and
/// <c>key_usage</c>), so they hold across every DialogueService replica and every Gateway in front of them.
/// </summary>
/// <remarks>
/// <para>The key of a call: the API key that authenticated it (<c>key:&lt;id&gt;</c> for database keys), a JWT's
/// subject (<c>jwt:&lt;sub&gt;</c>), or — for a <c>service</c> caller such as the Gateway — the end user's key it names
/// in the <c>chat-key-id</c> metadata. Database keys carry their own limits; every other key has
/// <see cref="KeyLimitOptions"/>.</para>
/// <para>Windows are fixed UTC minutes. A chat is admitted when its key has made fewer than its request limit in
/// this minute and used less than its token limit; its prompt and completion tokens are added when it ends, so a
/// key can overrun its token limit by the one chat that crossed it.</para>
/// </remarks>
public sealed class KeyLimits(IConversationStore conversations, ApiKeyStore keys, IOptions<KeyLimitOptions> defaults)
{
    /// <summary>The metadata a <c>service</c> caller names its end user's key in.</summary>
    public const string ForwardedKeyHeader = "chat-key-id";

    private readonly SqlConversationStore _db = conversations as SqlConversationStore
        ?? throw new InvalidOperationException("Limits live in the SQL conversation store's database.");

    /// <summary>Admits one chat for the caller of <paramref name="context"/>, or throws RESOURCE_EXHAUSTED.</summary>
    public async Task<CallMeter> AdmitAsync(ServerCallContext context, string ownerId, CancellationToken cancellationToken)
    {
        var keyId = KeyOf(context);
        var (rpm, tpm) = await LimitsOfAsync(keyId, cancellationToken);
        var now = _db.UtcNow();
        var window = now.ToUnixTimeSeconds() / 60;
        if (rpm == 0 && tpm == 0) return new CallMeter(keyId, ownerId, window); // unlimited: nothing to count up front
        await _db.InWriteTransactionAsync(async (connection, transaction) =>
        {
            await using (var prune = SqlConversationStore.Command(connection, transaction,
                "DELETE FROM rate_windows WHERE key_id = @key AND window_start < @window"))
            {
                SqlConversationStore.AddParameter(prune, "@key", keyId);
                SqlConversationStore.AddParameter(prune, "@window", window);
                await prune.ExecuteNonQueryAsync(cancellationToken);
            }
            await using var count = SqlConversationStore.Command(connection, transaction,
                "INSERT INTO rate_windows (key_id, window_start, requests, tokens) VALUES (@key, @window, 1, 0) " +
                "ON CONFLICT (key_id, window_start) DO UPDATE SET requests = rate_windows.requests + 1 RETURNING requests, tokens");
            SqlConversationStore.AddParameter(count, "@key", keyId);
            SqlConversationStore.AddParameter(count, "@window", window);
            await using var reader = await count.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            long requests = Convert.ToInt64(reader.GetValue(0)), tokens = Convert.ToInt64(reader.GetValue(1));
            // Thrown inside the transaction: it rolls back, so a refused request is not counted.
            if (rpm > 0 && requests > rpm) throw Refused($"{rpm} requests per minute", now);
            if (tpm > 0 && tokens >= tpm) throw Refused($"{tpm} tokens per minute", now);
            return true;
        }, cancellationToken);
        return new CallMeter(keyId, ownerId, window);
    }

    /// <summary>Charges a finished chat's tokens to its window and records its usage for the day.</summary>
    public Task RecordAsync(CallMeter meter, int promptTokens, int completionTokens, CancellationToken cancellationToken) =>
        _db.InWriteTransactionAsync(async (connection, transaction) =>
        {
            await using (var charge = SqlConversationStore.Command(connection, transaction,
                "INSERT INTO rate_windows (key_id, window_start, requests, tokens) VALUES (@key, @window, 0, @tokens) " +
                "ON CONFLICT (key_id, window_start) DO UPDATE SET tokens = rate_windows.tokens + @tokens"))
            {
                SqlConversationStore.AddParameter(charge, "@key", meter.KeyId);
                SqlConversationStore.AddParameter(charge, "@window", meter.WindowStart);
                SqlConversationStore.AddParameter(charge, "@tokens", (long)promptTokens + completionTokens);
                await charge.ExecuteNonQueryAsync(cancellationToken);
            }
            await using var usage = SqlConversationStore.Command(connection, transaction,
                "INSERT INTO key_usage (key_id, day, owner_id, requests, prompt_tokens, completion_tokens) VALUES (@key, @day, @owner, 1, @prompt, @completion) " +
                "ON CONFLICT (key_id, day) DO UPDATE SET requests = key_usage.requests + 1, " +
                "prompt_tokens = key_usage.prompt_tokens + @prompt, completion_tokens = key_usage.completion_tokens + @completion");
            SqlConversationStore.AddParameter(usage, "@key", meter.KeyId);
            SqlConversationStore.AddParameter(usage, "@day", Day(DateTimeOffset.FromUnixTimeSeconds(meter.WindowStart * 60)));
            SqlConversationStore.AddParameter(usage, "@owner", meter.OwnerId);
            SqlConversationStore.AddParameter(usage, "@prompt", (long)promptTokens);
            SqlConversationStore.AddParameter(usage, "@completion", (long)completionTokens);
            await usage.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    /// <summary>Usage from <paramref name="fromDay"/> to <paramref name="toDay"/> (inclusive, YYYY-MM-DD), by key and day.</summary>
    public async Task<IReadOnlyList<KeyUsage>> ReadUsageAsync(string? keyId, string? ownerId, string fromDay, string toDay, CancellationToken cancellationToken)
    {
        await using var connection = await _db.OpenDatabaseConnectionAsync(cancellationToken);
        var sql = "SELECT key_id, owner_id, day, requests, prompt_tokens, completion_tokens FROM key_usage WHERE day >= @from AND day <= @to"
            + (keyId is null ? "" : " AND key_id = @key") + (ownerId is null ? "" : " AND owner_id = @owner") + " ORDER BY day, key_id";
        await using var select = SqlConversationStore.Command(connection, null, sql);
        SqlConversationStore.AddParameter(select, "@from", fromDay);
        SqlConversationStore.AddParameter(select, "@to", toDay);
        if (keyId is not null) SqlConversationStore.AddParameter(select, "@key", keyId);
        if (ownerId is not null) SqlConversationStore.AddParameter(select, "@owner", ownerId);
        var list = new List<KeyUsage>();
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            list.Add(new KeyUsage(reader.GetString(0), reader.GetString(1), reader.GetString(2),
                Convert.ToInt64(reader.GetValue(3)), Convert.ToInt64(reader.GetValue(4)), Convert.ToInt64(reader.GetValue(5))));
        return list;
    }

    public static string Day(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>The key a call counts against (see the class remarks).</summary>
    private static string KeyOf(ServerCallContext context)
    {
        var user = context.GetHttpContext().User;
        if (user.IsInRole(Roles.Service) && context.RequestHeaders.GetValue(ForwardedKeyHeader) is { Length: > 0 and <= 128 } forwarded)
            return forwarded;
        return user.FindFirst(ServiceIdentity.KeyIdClaim)?.Value ?? "principal:" + user.Identity?.Name;
    }

    private async Task<(int Requests, int Tokens)> LimitsOfAsync(string keyId, CancellationToken cancellationToken)
    {
        var d = defaults.Value;
        if (!keyId.StartsWith("key:", StringComparison.Ordinal) || !Guid.TryParse(keyId.AsSpan(4), out var id)) return (d.RequestsPerMinute, d.TokensPerMinute);
        var key = await keys.FindByIdAsync(id, cancellationToken);
        return (key is { RequestsPerMinute: > 0 } ? key.RequestsPerMinute : d.RequestsPerMinute,
                key is { TokensPerMinute: > 0 } ? key.TokensPerMinute : d.TokensPerMinute);
    }

    private static RpcException Refused(string limit, DateTimeOffset now)
    {
        var retryAfter = 60 - (int)(now.ToUnixTimeSeconds() % 60);
        var trailers = new Metadata { { "retry-after", retryAfter.ToString(CultureInfo.InvariantCulture) } };
        return new RpcException(new Status(StatusCode.ResourceExhausted, $"Rate limit reached for this key: {limit}. Retry in {retryAfter} s."), trailers);
    }
}

/// <summary>Passes a chat's events on and keeps its usage (the last event of a chat that ends normally).</summary>
internal sealed class UsageCapture(IServerStreamWriter<Protos.Chat.V1.ChatEvent> inner) : IServerStreamWriter<Protos.Chat.V1.ChatEvent>
{
    public Protos.Chat.V1.ChatUsage? Usage { get; private set; }

    public WriteOptions? WriteOptions
    {
        get => inner.WriteOptions;
        set => inner.WriteOptions = value;
    }

    public Task WriteAsync(Protos.Chat.V1.ChatEvent message) => WriteAsync(message, CancellationToken.None);

    public Task WriteAsync(Protos.Chat.V1.ChatEvent message, CancellationToken cancellationToken)
    {
        if (message.EventCase == Protos.Chat.V1.ChatEvent.EventOneofCase.Usage) Usage = message.Usage;
        return inner.WriteAsync(message, cancellationToken);
    }
}
