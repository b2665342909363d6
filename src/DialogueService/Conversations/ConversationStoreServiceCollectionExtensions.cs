using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// Registers the conversation store chosen by configuration, and the hosted service that migrates its schema
/// before the service reports ready.
/// </summary>
/// <remarks>
/// Configuration:
/// <list type="bullet">
/// <item><c>ConnectionStrings:Conversations</c> — a PostgreSQL connection string (<c>Host=…;Database=…</c>) selects
/// PostgreSQL; a SQLite one (<c>Data Source=file.db</c>) selects that SQLite file.</item>
/// <item><c>Data:Directory</c> (default <c>.data</c>) — without a connection string, the SQLite file is
/// <c>conversations.db</c> in this directory.</item>
/// <item><c>Conversations:AbandonedAfterMinutes</c> (default 30) — at start, assistant replies still in progress
/// that began longer ago than this are marked failed (their generating process died).</item>
/// </list>
/// </remarks>
public static class ConversationStoreServiceCollectionExtensions
{
    public const string ConnectionStringName = "Conversations";

    public static IServiceCollection AddConversationStore(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<IConversationStore>(provider =>
            CreateStore(configuration, provider.GetService<TimeProvider>()));
        services.AddHostedService<ConversationStoreMigrator>();
        return services;
    }

    /// <summary>The store the configuration selects (see the class remarks).</summary>
    public static SqlConversationStore CreateStore(IConfiguration configuration, TimeProvider? timeProvider = null)
    {
        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
            return SqliteConversationStore.InDirectory(configuration["Data:Directory"] is { Length: > 0 } directory
                ? directory : ".data", timeProvider);

        var keys = new DbConnectionStringBuilder { ConnectionString = connectionString };
        if (keys.ContainsKey("Host") || keys.ContainsKey("Server"))
            return new PostgresConversationStore(connectionString, timeProvider);
        if (keys.ContainsKey("Data Source") || keys.ContainsKey("DataSource") || keys.ContainsKey("Filename"))
        {
            var file = new SqliteConnectionStringBuilder(connectionString).DataSource;
            if (Path.GetDirectoryName(Path.GetFullPath(file)) is { } directory) Directory.CreateDirectory(directory);
            return new SqliteConversationStore(connectionString, timeProvider);
        }
        throw new InvalidOperationException(
            $"ConnectionStrings:{ConnectionStringName} is neither a PostgreSQL connection string (Host=…) " +
            "nor a SQLite one (Data Source=…).");
    }
}

/// <summary>
/// Brings the schema up to date when the host starts (before the service is marked ready), then fails the
/// assistant replies that a crashed process left in progress.
/// </summary>
internal sealed class ConversationStoreMigrator(
    IConversationStore store, IConfiguration configuration, ILogger<ConversationStoreMigrator> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var result = await store.MigrateAsync(cancellationToken);
        if (result.Applied.Count > 0)
            logger.LogInformation("Conversation store migrated to schema version {Version} (applied {Applied})",
                result.SchemaVersion, string.Join(", ", result.Applied));
        else
            logger.LogInformation("Conversation store schema is at version {Version}", result.SchemaVersion);

        var minutes = configuration.GetValue("Conversations:AbandonedAfterMinutes", 30.0);
        var now = DateTimeOffset.UtcNow;
        var failed = await store.FailAbandonedMessagesAsync(now - TimeSpan.FromMinutes(minutes), cancellationToken);
        if (failed > 0)
            logger.LogWarning("Marked {Count} interrupted assistant replies as failed", failed);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
