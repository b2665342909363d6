using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The embedded default: one SQLite file in WAL mode. Readers never block the writer; writes are serialised,
/// first inside this process (one writer at a time, without SQLite's busy-wait sleeps) and then between
/// processes by SQLite's own write lock, waited for up to <see cref="BusyTimeoutMilliseconds"/>.
/// </summary>
/// <remarks>
/// Durability: <c>synchronous=FULL</c>, so a committed transaction survives a process crash and a power loss.
/// Ids are stored as lower-case canonical text, whose byte order equals the UUID's (as in PostgreSQL);
/// timestamps as integer microseconds since the Unix epoch.
/// </remarks>
public sealed class SqliteConversationStore : SqlConversationStore
{
    public const string FileName = "conversations.db";
    private const int BusyTimeoutMilliseconds = 10_000;

    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    /// <param name="connectionString">A Microsoft.Data.Sqlite connection string naming the database file.</param>
    public SqliteConversationStore(string connectionString, TimeProvider? timeProvider = null) : base(timeProvider)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString)
        {
            // Enforces messages → conversations, including ON DELETE CASCADE.
            ForeignKeys = true,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        };
        if (string.IsNullOrEmpty(builder.DataSource) || builder.DataSource == ":memory:")
            throw new ArgumentException("The SQLite conversation store needs a database file.", nameof(connectionString));
        _connectionString = builder.ToString();
        DatabasePath = Path.GetFullPath(builder.DataSource);
    }

    /// <summary>The store in <paramref name="dataDirectory"/>/conversations.db (the directory is created).</summary>
    public static SqliteConversationStore InDirectory(string dataDirectory, TimeProvider? timeProvider = null)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, FileName);
        return new SqliteConversationStore(new SqliteConnectionStringBuilder { DataSource = path }.ToString(), timeProvider);
    }

    public string DatabasePath { get; }

    protected override IReadOnlyList<SchemaMigration> Migrations => SqliteSchema.Migrations;

    protected override string MigrationsTableDdl => SqliteSchema.MigrationsTable;

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            // Per-connection settings (a pooled connection keeps them; setting them again costs nothing).
            await ExecuteAsync(connection, null,
                $"PRAGMA busy_timeout = {BusyTimeoutMilliseconds}; PRAGMA synchronous = FULL;", cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    // BEGIN IMMEDIATE: the write lock is taken at once, so a transaction never fails half-way trying to upgrade
    // a read lock (which SQLite answers with SQLITE_BUSY and no wait).
    protected override ValueTask<DbTransaction> BeginWriteTransactionAsync(DbConnection connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false));

    // BEGIN DEFERRED: in WAL mode the first read fixes a snapshot that later reads in the transaction share.
    protected override ValueTask<DbTransaction> BeginReadTransactionAsync(DbConnection connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: true));

    protected override Task PrepareForMigrationAsync(DbConnection connection, CancellationToken cancellationToken) =>
        // WAL is a property of the file and persists; it cannot be switched inside a transaction.
        ExecuteAsync(connection, null, "PRAGMA journal_mode = WAL;", cancellationToken);

    // BEGIN IMMEDIATE already holds the database's write lock: another process migrating waits for it, then
    // finds the versions recorded.
    protected override Task LockForMigrationAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    protected override async Task<T> WriteAsync<T>(
        Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            return await base.WriteAsync(work, cancellationToken);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    protected override object IdValue(Guid id) => id.ToString("D");

    protected override Guid ReadId(DbDataReader reader, int ordinal) => Guid.ParseExact(reader.GetString(ordinal), "D");

    protected override object TimestampValue(DateTimeOffset timestamp) => ToMicros(timestamp);

    protected override DateTimeOffset ReadTimestamp(DbDataReader reader, int ordinal) => FromMicros(reader.GetInt64(ordinal));

    public override ValueTask DisposeAsync()
    {
        // Closes the pooled connections, so that the file (and its -wal and -shm) can be moved or deleted.
        using (var connection = new SqliteConnection(_connectionString)) SqliteConnection.ClearPool(connection);
        _writeGate.Dispose();
        return ValueTask.CompletedTask;
    }
}
