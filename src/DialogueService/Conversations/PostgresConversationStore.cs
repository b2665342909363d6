using System.Data;
using System.Data.Common;
using Npgsql;
using NpgsqlTypes;

namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The store for several replicas: PostgreSQL through one pooled <see cref="NpgsqlDataSource"/>. Writes run at
/// READ COMMITTED; the conversation row lock taken by their first statement orders concurrent writes to one
/// conversation. Reads of a conversation with its messages run at REPEATABLE READ (one snapshot).
/// </summary>
public sealed class PostgresConversationStore : SqlConversationStore
{
    // pg_advisory_xact_lock(int4, int4): this store's key plus the schema, so stores in different schemas of one
    // database migrate independently.
    private const string MigrationLock =
        "SELECT pg_advisory_xact_lock(hashtext('chatservices.conversations.migrate'), hashtext(current_schema()))";

    private readonly NpgsqlDataSource _dataSource;

    public PostgresConversationStore(string connectionString, TimeProvider? timeProvider = null)
        : this(NpgsqlDataSource.Create(connectionString), timeProvider)
    {
    }

    /// <param name="dataSource">Owned by the store from now on: disposed with it.</param>
    public PostgresConversationStore(NpgsqlDataSource dataSource, TimeProvider? timeProvider = null) : base(timeProvider) =>
        _dataSource = dataSource;

    protected override IReadOnlyList<SchemaMigration> Migrations => PostgresSchema.Migrations;

    protected override string MigrationsTableDdl => PostgresSchema.MigrationsTable;

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken);

    protected override async ValueTask<DbTransaction> BeginWriteTransactionAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await ((NpgsqlConnection)connection).BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);

    protected override async ValueTask<DbTransaction> BeginReadTransactionAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await ((NpgsqlConnection)connection).BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);

    // Held until the migration transaction ends: a second replica starting at the same time waits here, then
    // finds the versions recorded. Taken before schema_migrations is created, since concurrent
    // CREATE TABLE IF NOT EXISTS can still collide.
    protected override Task LockForMigrationAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) =>
        ExecuteAsync(connection, transaction, MigrationLock, cancellationToken);

    protected override object IdValue(Guid id) => id;

    protected override Guid ReadId(DbDataReader reader, int ordinal) => reader.GetGuid(ordinal);

    protected override object TimestampValue(DateTimeOffset timestamp) => timestamp.UtcDateTime;

    protected override DateTimeOffset ReadTimestamp(DbDataReader reader, int ordinal) =>
        new(DateTime.SpecifyKind(reader.GetDateTime(ordinal), DateTimeKind.Utc));

    protected override void AddJsonParameter(DbCommand command, string name, string? json) =>
        command.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Jsonb) { Value = (object?)json ?? DBNull.Value });

    public override ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
