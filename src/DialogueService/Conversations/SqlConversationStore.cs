using System.Data.Common;
using System.Text.Json;

namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The <see cref="IConversationStore"/> logic and SQL shared by the SQLite and PostgreSQL stores. A dialect
/// supplies connections, transactions, how ids and timestamps are stored, and its migration scripts; the
/// statements themselves are the same text on both (both accept <c>@name</c> parameters, row-value comparison,
/// <c>LIMIT</c> and <c>RETURNING</c>).
/// </summary>
/// <remarks>
/// Invariants the statements keep:
/// <list type="bullet">
/// <item>Every statement that reads or writes a conversation filters on <c>owner_id</c>, so another owner's
/// conversation behaves exactly like a missing one.</item>
/// <item><c>conversations.message_count</c> is the sequence number of the conversation's last message. A message
/// takes its number by incrementing it in the same transaction that inserts the message; the increment locks the
/// conversation row (PostgreSQL) or the database (SQLite), so concurrent appends get 1, 2, 3… with no gap and no
/// duplicate (the unique (conversation_id, seq) key enforces it as well).</item>
/// <item>Timestamps are UTC truncated to microseconds (PostgreSQL's precision), so a value read back equals the
/// value written and page tokens compare exactly.</item>
/// </list>
/// </remarks>
public abstract class SqlConversationStore : IConversationStore, IAsyncDisposable
{
    private const string ConversationColumns =
        "id, owner_id, title, system_prompt, metadata, created_at, updated_at, message_count";
    private const string MessageColumns =
        "id, conversation_id, seq, role, content, status, finish_reason, prompt_tokens, completion_tokens, error, created_at, completed_at, parent_id, tool_calls, tool_call_id";

    private static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();

    private readonly TimeProvider _time;

    protected SqlConversationStore(TimeProvider? timeProvider) => _time = timeProvider ?? TimeProvider.System;

    /// <summary>
    /// Test seam: called inside write transactions between their statements, with the name of the point reached
    /// ("append:numbered", "complete:touched") and the open connection. Lets tests interrupt a transaction half-way.
    /// </summary>
    internal Func<string, DbConnection, Task>? BetweenStatements { get; set; }

    // ---- what a dialect provides ----

    protected abstract ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken);

    /// <summary>A transaction that holds the write lock it needs from its first statement.</summary>
    protected abstract ValueTask<DbTransaction> BeginWriteTransactionAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>A transaction whose statements all read one consistent snapshot.</summary>
    protected abstract ValueTask<DbTransaction> BeginReadTransactionAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>The ordered migration scripts of this dialect.</summary>
    protected abstract IReadOnlyList<SchemaMigration> Migrations { get; }

    /// <summary>The DDL of the table recording applied migrations (idempotent).</summary>
    protected abstract string MigrationsTableDdl { get; }

    /// <summary>
    /// Called first inside the migration transaction; must ensure no other process migrates the same database
    /// until it ends.
    /// </summary>
    protected abstract Task LockForMigrationAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken);

    /// <summary>Called on the migration connection before its transaction begins.</summary>
    protected virtual Task PrepareForMigrationAsync(DbConnection connection, CancellationToken cancellationToken) => Task.CompletedTask;

    protected abstract object IdValue(Guid id);
    protected abstract Guid ReadId(DbDataReader reader, int ordinal);
    protected abstract object TimestampValue(DateTimeOffset timestamp);
    protected abstract DateTimeOffset ReadTimestamp(DbDataReader reader, int ordinal);
    protected virtual void AddJsonParameter(DbCommand command, string name, string? json) => AddParameter(command, name, json);

    /// <summary>Runs <paramref name="work"/> in a write transaction and commits it.</summary>
    protected virtual async Task<T> WriteAsync<T>(
        Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await OpenConnectionAsync(cancellationToken);
        await using var transaction = await BeginWriteTransactionAsync(connection, cancellationToken);
        var result = await work(connection, transaction);
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    public abstract ValueTask DisposeAsync();

    // ---- migrations ----

    public async Task<MigrationResult> MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenConnectionAsync(cancellationToken);
        await PrepareForMigrationAsync(connection, cancellationToken);
        await using var transaction = await BeginWriteTransactionAsync(connection, cancellationToken);
        await LockForMigrationAsync(connection, transaction, cancellationToken);
        await ExecuteAsync(connection, transaction, MigrationsTableDdl, cancellationToken);

        var appliedBefore = new HashSet<int>();
        await using (var select = Command(connection, transaction, "SELECT version FROM schema_migrations"))
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken))
            while (await reader.ReadAsync(cancellationToken))
                appliedBefore.Add(Convert.ToInt32(reader.GetValue(0)));

        var applied = new List<int>();
        foreach (var migration in Migrations)
        {
            if (appliedBefore.Contains(migration.Version)) continue;
            await ExecuteAsync(connection, transaction, migration.Sql, cancellationToken);
            await using var record = Command(connection, transaction,
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@version, @name, @applied_at)");
            AddParameter(record, "@version", migration.Version);
            AddParameter(record, "@name", migration.Name);
            AddParameter(record, "@applied_at", TimestampValue(Now()));
            await record.ExecuteNonQueryAsync(cancellationToken);
            applied.Add(migration.Version);
        }
        await transaction.CommitAsync(cancellationToken);

        // A newer replica may have applied versions this one does not know; they are left alone and reported.
        var version = appliedBefore.Concat(applied).DefaultIfEmpty(0).Max();
        return new MigrationResult(applied, version);
    }

    /// <summary>The newest schema version this store knows.</summary>
    public int LatestSchemaVersion => Migrations[^1].Version;

    // ---- conversations ----

    public Task<Conversation> CreateAsync(
        string ownerId, string? title, string? systemPrompt = null,
        IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        title = ConversationLimits.Title(title);
        ConversationLimits.SystemPrompt(systemPrompt);
        ConversationLimits.Metadata(metadata);

        var now = Now();
        var conversation = new Conversation(Guid.CreateVersion7(now), ownerId, title, systemPrompt,
            metadata is null ? NoMetadata : new Dictionary<string, string>(metadata), now, now, 0);
        return WriteAsync(async (connection, transaction) =>
        {
            await using var insert = Command(connection, transaction,
                $"INSERT INTO conversations ({ConversationColumns}) " +
                "VALUES (@id, @owner, @title, @system_prompt, @metadata, @now, @now, 0)");
            AddParameter(insert, "@id", IdValue(conversation.Id));
            AddParameter(insert, "@owner", ownerId);
            AddParameter(insert, "@title", title);
            AddParameter(insert, "@system_prompt", systemPrompt);
            AddJsonParameter(insert, "@metadata", metadata is { Count: > 0 } ? JsonSerializer.Serialize(metadata) : null);
            AddParameter(insert, "@now", TimestampValue(now));
            await insert.ExecuteNonQueryAsync(cancellationToken);
            return conversation;
        }, cancellationToken);
    }

    public async Task<ConversationPage> ListAsync(
        string ownerId, int pageSize, string? pageToken, CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        ConversationLimits.PageSize(pageSize);
        PageToken? after = string.IsNullOrEmpty(pageToken) ? null : PageToken.Decode(pageToken);

        await using var connection = await OpenConnectionAsync(cancellationToken);
        await using var command = Command(connection, null,
            $"SELECT {ConversationColumns} FROM conversations WHERE owner_id = @owner " +
            (after is null ? "" : "AND (updated_at, id) < (@after_updated_at, @after_id) ") +
            "ORDER BY updated_at DESC, id DESC LIMIT @limit");
        AddParameter(command, "@owner", ownerId);
        if (after is { } cursor)
        {
            AddParameter(command, "@after_updated_at", TimestampValue(FromMicros(cursor.UpdatedAtMicros)));
            AddParameter(command, "@after_id", IdValue(cursor.Id));
        }
        // One row more than the page tells whether another page follows.
        AddParameter(command, "@limit", pageSize + 1);

        var conversations = new List<Conversation>(pageSize + 1);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            while (await reader.ReadAsync(cancellationToken))
                conversations.Add(ReadConversation(reader));

        string? next = null;
        if (conversations.Count > pageSize)
        {
            conversations.RemoveAt(pageSize);
            var last = conversations[^1];
            next = new PageToken(ToMicros(last.UpdatedAt), last.Id).Encode();
        }
        return new ConversationPage(conversations, next);
    }

    public async Task<ConversationDetail> GetAsync(
        string ownerId, Guid conversationId, bool includeMessages, CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        await using var connection = await OpenConnectionAsync(cancellationToken);
        // One snapshot for both queries: the messages match the conversation row (its message_count).
        await using var transaction = await BeginReadTransactionAsync(connection, cancellationToken);

        Conversation conversation;
        await using (var command = Command(connection, transaction,
            $"SELECT {ConversationColumns} FROM conversations WHERE id = @id AND owner_id = @owner"))
        {
            AddParameter(command, "@id", IdValue(conversationId));
            AddParameter(command, "@owner", ownerId);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken)) throw new ConversationNotFoundException(conversationId);
            conversation = ReadConversation(reader);
        }

        var messages = new List<ConversationMessage>();
        if (includeMessages)
        {
            await using var command = Command(connection, transaction,
                $"SELECT {MessageColumns} FROM messages WHERE conversation_id = @id ORDER BY seq");
            AddParameter(command, "@id", IdValue(conversationId));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) messages.Add(ReadMessage(reader));
        }
        await transaction.CommitAsync(cancellationToken);
        return new ConversationDetail(conversation, messages);
    }

    public Task<Conversation> RenameAsync(
        string ownerId, Guid conversationId, string title, CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        return UpdateConversationAsync(ownerId, conversationId, "title", ConversationLimits.Title(title), cancellationToken);
    }

    public Task<Conversation> SetSystemPromptAsync(
        string ownerId, Guid conversationId, string? systemPrompt, CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        ConversationLimits.SystemPrompt(systemPrompt);
        return UpdateConversationAsync(ownerId, conversationId, "system_prompt", systemPrompt, cancellationToken);
    }

    /// <summary>Sets one column of the owner's conversation (a name from this class, never input) and its updated_at.</summary>
    private Task<Conversation> UpdateConversationAsync(
        string ownerId, Guid conversationId, string column, string? value, CancellationToken cancellationToken)
    {
        var now = Now();
        return WriteAsync(async (connection, transaction) =>
        {
            await using var update = Command(connection, transaction,
                $"UPDATE conversations SET {column} = @value, updated_at = @now WHERE id = @id AND owner_id = @owner " +
                $"RETURNING {ConversationColumns}");
            AddParameter(update, "@value", value);
            AddParameter(update, "@now", TimestampValue(now));
            AddParameter(update, "@id", IdValue(conversationId));
            AddParameter(update, "@owner", ownerId);
            await using var reader = await update.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken)) throw new ConversationNotFoundException(conversationId);
            return ReadConversation(reader);
        }, cancellationToken);
    }

    public Task DeleteAsync(string ownerId, Guid conversationId, CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        return WriteAsync(async (connection, transaction) =>
        {
            // The messages go with it: ON DELETE CASCADE, inside this one statement.
            await using var delete = Command(connection, transaction,
                "DELETE FROM conversations WHERE id = @id AND owner_id = @owner");
            AddParameter(delete, "@id", IdValue(conversationId));
            AddParameter(delete, "@owner", ownerId);
            if (await delete.ExecuteNonQueryAsync(cancellationToken) == 0)
                throw new ConversationNotFoundException(conversationId);
            return true;
        }, cancellationToken);
    }

    // ---- messages ----

    public Task<ConversationMessage> AppendMessageAsync(
        string ownerId, Guid conversationId, MessageRole role, string content,
        MessageStatus status = MessageStatus.Completed, Guid? parentId = null, CancellationToken cancellationToken = default,
        string? toolCallId = null)
    {
        ConversationLimits.OwnerId(ownerId);
        ConversationLimits.Role(role);
        ConversationLimits.Content(content);
        ConversationLimits.FinalStatus(status, nameof(status));
        ConversationLimits.ToolCallId(role, toolCallId);
        return InsertMessageAsync(ownerId, conversationId, role, content, status, parentId, cancellationToken, toolCallId);
    }

    public Task<ConversationMessage> BeginAssistantMessageAsync(
        string ownerId, Guid conversationId, Guid? parentId = null, CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        return InsertMessageAsync(ownerId, conversationId, MessageRole.Assistant, "", MessageStatus.InProgress, parentId, cancellationToken);
    }

    private Task<ConversationMessage> InsertMessageAsync(
        string ownerId, Guid conversationId, MessageRole role, string content, MessageStatus status, Guid? parentId,
        CancellationToken cancellationToken, string? toolCallId = null)
    {
        var now = Now();
        return WriteAsync(async (connection, transaction) =>
        {
            var sequence = await TouchConversationAsync(connection, transaction, ownerId, conversationId, now,
                numberMessage: true, cancellationToken);
            if (BetweenStatements is { } hook) await hook("append:numbered", connection);
            var parent = await ResolveParentAsync(connection, transaction, conversationId, sequence, parentId, cancellationToken);

            var message = new ConversationMessage(Guid.CreateVersion7(now), conversationId, sequence, role, content,
                status, null, null, null, now, status == MessageStatus.InProgress ? null : now, parent, ToolCallId: toolCallId);
            await using var insert = Command(connection, transaction,
                $"INSERT INTO messages ({MessageColumns}) VALUES (@id, @conversation_id, @seq, @role, @content, " +
                "@status, NULL, NULL, NULL, NULL, @now, @completed_at, @parent_id, NULL, @tool_call_id)");
            AddParameter(insert, "@id", IdValue(message.Id));
            AddParameter(insert, "@conversation_id", IdValue(conversationId));
            AddParameter(insert, "@seq", sequence);
            AddParameter(insert, "@role", RoleName(role));
            AddParameter(insert, "@content", content);
            AddParameter(insert, "@status", StatusName(status));
            AddParameter(insert, "@now", TimestampValue(now));
            AddParameter(insert, "@completed_at", message.CompletedAt is { } completed ? TimestampValue(completed) : null);
            AddParameter(insert, "@parent_id", parent is { } p ? IdValue(p) : null);
            AddParameter(insert, "@tool_call_id", toolCallId);
            await insert.ExecuteNonQueryAsync(cancellationToken);
            return message;
        }, cancellationToken);
    }

    /// <summary>
    /// The parent a new message with number <paramref name="sequence"/> gets: the latest message before it when none
    /// is asked for, none for <see cref="Guid.Empty"/>, otherwise the given message, which must be in this conversation.
    /// </summary>
    private async Task<Guid?> ResolveParentAsync(
        DbConnection connection, DbTransaction transaction, Guid conversationId, long sequence, Guid? parentId,
        CancellationToken cancellationToken)
    {
        if (parentId == Guid.Empty) return null;
        await using var select = Command(connection, transaction, parentId is null
            ? "SELECT id FROM messages WHERE conversation_id = @conversation_id AND seq = @seq"
            : "SELECT id FROM messages WHERE conversation_id = @conversation_id AND id = @id");
        AddParameter(select, "@conversation_id", IdValue(conversationId));
        if (parentId is { } id) AddParameter(select, "@id", IdValue(id));
        else AddParameter(select, "@seq", sequence - 1);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        if (await reader.ReadAsync(cancellationToken)) return ReadId(reader, 0);
        return parentId is null
            ? null
            : throw new ConversationValidationException(nameof(parentId), $"Message '{parentId}' is not in conversation '{conversationId}'.");
    }

    public Task<ConversationMessage> CompleteAssistantMessageAsync(
        string ownerId, Guid conversationId, Guid messageId, AssistantOutcome outcome,
        CancellationToken cancellationToken = default)
    {
        ConversationLimits.OwnerId(ownerId);
        ConversationLimits.Outcome(outcome);
        var now = Now();
        return WriteAsync(async (connection, transaction) =>
        {
            // Conversation first, then message: the same lock order as an append, so the two never deadlock.
            await TouchConversationAsync(connection, transaction, ownerId, conversationId, now,
                numberMessage: false, cancellationToken);
            if (BetweenStatements is { } hook) await hook("complete:touched", connection);

            await using var update = Command(connection, transaction,
                "UPDATE messages SET content = @content, status = @status, finish_reason = @finish_reason, " +
                "prompt_tokens = @prompt_tokens, completion_tokens = @completion_tokens, error = @error, completed_at = @now, " +
                "tool_calls = @tool_calls " +
                "WHERE id = @id AND conversation_id = @conversation_id AND status = 'in_progress' " +
                $"RETURNING {MessageColumns}");
            AddParameter(update, "@content", outcome.Content);
            AddParameter(update, "@status", StatusName(outcome.Status));
            AddParameter(update, "@finish_reason", outcome.FinishReason);
            AddParameter(update, "@prompt_tokens", outcome.Usage?.PromptTokens);
            AddParameter(update, "@completion_tokens", outcome.Usage?.CompletionTokens);
            AddParameter(update, "@error", outcome.Error);
            AddJsonParameter(update, "@tool_calls", ToolCallsJson(outcome.ToolCalls));
            AddParameter(update, "@now", TimestampValue(now));
            AddParameter(update, "@id", IdValue(messageId));
            AddParameter(update, "@conversation_id", IdValue(conversationId));
            await using (var reader = await update.ExecuteReaderAsync(cancellationToken))
                if (await reader.ReadAsync(cancellationToken))
                    return ReadMessage(reader);

            // Nothing updated: either no such message in this conversation, or it is already final.
            await using var probe = Command(connection, transaction,
                "SELECT status FROM messages WHERE id = @id AND conversation_id = @conversation_id");
            AddParameter(probe, "@id", IdValue(messageId));
            AddParameter(probe, "@conversation_id", IdValue(conversationId));
            if (await probe.ExecuteScalarAsync(cancellationToken) is string current)
                throw new ConversationStateException(
                    $"Message '{messageId}' is already {current}; an assistant message is completed once.");
            throw new ConversationNotFoundException(conversationId);
        }, cancellationToken);
    }

    public Task<int> FailAbandonedMessagesAsync(DateTimeOffset startedBefore, CancellationToken cancellationToken = default)
    {
        var now = Now();
        return WriteAsync(async (connection, transaction) =>
        {
            await using var update = Command(connection, transaction,
                "UPDATE messages SET status = 'failed', error = @error, completed_at = @now " +
                "WHERE status = 'in_progress' AND created_at < @before");
            AddParameter(update, "@error", "Generation was interrupted before it finished.");
            AddParameter(update, "@now", TimestampValue(now));
            AddParameter(update, "@before", TimestampValue(startedBefore));
            return await update.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);
    }

    /// <summary>
    /// Sets the conversation's updated_at and, when <paramref name="numberMessage"/>, takes the next message
    /// number. Locks the conversation row until the transaction ends. Throws not-found for a foreign conversation.
    /// </summary>
    private async Task<long> TouchConversationAsync(
        DbConnection connection, DbTransaction transaction, string ownerId, Guid conversationId, DateTimeOffset now,
        bool numberMessage, CancellationToken cancellationToken)
    {
        await using var update = Command(connection, transaction,
            "UPDATE conversations SET updated_at = @now" + (numberMessage ? ", message_count = message_count + 1" : "") +
            " WHERE id = @id AND owner_id = @owner RETURNING message_count");
        AddParameter(update, "@now", TimestampValue(now));
        AddParameter(update, "@id", IdValue(conversationId));
        AddParameter(update, "@owner", ownerId);
        return await update.ExecuteScalarAsync(cancellationToken) is { } count and not DBNull
            ? Convert.ToInt64(count)
            : throw new ConversationNotFoundException(conversationId);
    }

    // ---- rows ----

    private Conversation ReadConversation(DbDataReader reader)
    {
        var metadata = reader.IsDBNull(4)
            ? NoMetadata
            : JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(4)) ?? NoMetadata;
        return new Conversation(
            ReadId(reader, 0), reader.GetString(1), reader.GetString(2),
            reader.IsDBNull(3) ? null : reader.GetString(3), metadata,
            ReadTimestamp(reader, 5), ReadTimestamp(reader, 6), reader.GetInt64(7));
    }

    private ConversationMessage ReadMessage(DbDataReader reader)
    {
        TokenUsage? usage = reader.IsDBNull(7) && reader.IsDBNull(8)
            ? null
            : new TokenUsage(reader.IsDBNull(7) ? 0 : reader.GetInt32(7), reader.IsDBNull(8) ? 0 : reader.GetInt32(8));
        return new ConversationMessage(
            ReadId(reader, 0), ReadId(reader, 1), reader.GetInt64(2), ParseRole(reader.GetString(3)),
            reader.GetString(4), ParseStatus(reader.GetString(5)),
            reader.IsDBNull(6) ? null : reader.GetString(6), usage,
            reader.IsDBNull(9) ? null : reader.GetString(9),
            ReadTimestamp(reader, 10), reader.IsDBNull(11) ? null : ReadTimestamp(reader, 11),
            reader.IsDBNull(12) ? null : ReadId(reader, 12),
            reader.IsDBNull(13) ? null : ParseToolCalls(reader.GetString(13)),
            reader.IsDBNull(14) ? null : reader.GetString(14));
    }

    /// <summary>Tool calls as stored: <c>[{"id", "name", "arguments"}]</c> (arguments as the model's JSON text).</summary>
    private static string? ToolCallsJson(IReadOnlyList<Tools.FunctionCall>? calls)
    {
        if (calls is not { Count: > 0 }) return null;
        var array = new System.Text.Json.Nodes.JsonArray();
        foreach (var c in calls) array.Add(new System.Text.Json.Nodes.JsonObject { ["id"] = c.Id, ["name"] = c.Name, ["arguments"] = c.Arguments });
        return array.ToJsonString();
    }

    private static IReadOnlyList<Tools.FunctionCall> ParseToolCalls(string json)
    {
        var calls = new List<Tools.FunctionCall>();
        foreach (var c in System.Text.Json.Nodes.JsonNode.Parse(json)!.AsArray())
            calls.Add(new Tools.FunctionCall(c!["id"]!.GetValue<string>(), c["name"]!.GetValue<string>(), c["arguments"]!.GetValue<string>()));
        return calls;
    }

    // Stored names, indexed by enum value (the CHECK constraints of the schema list the same names).
    private static readonly string[] RoleNames = ["system", "user", "assistant", "tool"];
    private static readonly string[] StatusNames = ["completed", "in_progress", "cancelled", "failed"];

    internal static string RoleName(MessageRole role) => RoleNames[(int)role];

    internal static string StatusName(MessageStatus status) => StatusNames[(int)status];

    private static MessageRole ParseRole(string name) => (MessageRole)ParseName(RoleNames, name, "role");

    private static MessageStatus ParseStatus(string name) => (MessageStatus)ParseName(StatusNames, name, "status");

    private static int ParseName(string[] names, string name, string what) =>
        Array.IndexOf(names, name) is var index and >= 0
            ? index
            : throw new InvalidDataException($"Unknown message {what} '{name}' in the database.");

    // ---- plumbing ----

    private DateTimeOffset Now() => FromMicros(ToMicros(_time.GetUtcNow()));

    protected static long ToMicros(DateTimeOffset timestamp) =>
        (timestamp.UtcTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;

    protected static DateTimeOffset FromMicros(long micros) =>
        new(DateTime.UnixEpoch.Ticks + micros * TimeSpan.TicksPerMicrosecond, TimeSpan.Zero);

    // ---- the same database for DialogueService's other tables (API keys) ----

    internal ValueTask<DbConnection> OpenDatabaseConnectionAsync(CancellationToken cancellationToken) => OpenConnectionAsync(cancellationToken);

    internal Task<T> InWriteTransactionAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        WriteAsync(work, cancellationToken);

    internal object IdParameter(Guid id) => IdValue(id);

    internal Guid GetId(DbDataReader reader, int ordinal) => ReadId(reader, ordinal);

    internal object TimestampParameter(DateTimeOffset timestamp) => TimestampValue(FromMicros(ToMicros(timestamp)));

    internal DateTimeOffset GetTimestamp(DbDataReader reader, int ordinal) => ReadTimestamp(reader, ordinal);

    internal DateTimeOffset UtcNow() => Now();

    protected internal static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    protected internal static void AddParameter(DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }

    protected static async Task ExecuteAsync(
        DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}

/// <summary>One versioned schema change. Versions are applied in ascending order, each exactly once.</summary>
public sealed record SchemaMigration(int Version, string Name, string Sql);
