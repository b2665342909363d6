using System.Data.Common;
using ChatServices.DialogueService.Conversations;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ChatServices.DialogueService.Tests.Conversations;

/// <summary>The store behaviour against SQLite files, one directory per test, plus what is SQLite's own.</summary>
public sealed class SqliteConversationStoreTests : ConversationStoreTests
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "chatservices-tests", "conversations-" + Guid.NewGuid().ToString("N"));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private string PathOf(string database) => Path.Combine(_directory, database, SqliteConversationStore.FileName);

    protected override Task<SqlConversationStore> CreateStoreAsync(string database) =>
        Task.FromResult<SqlConversationStore>(SqliteConversationStore.InDirectory(Path.GetDirectoryName(PathOf(database))!));

    protected override IReadOnlyList<SchemaMigration> Schema => SqliteSchema.Migrations;

    protected override async Task<long> CountRowsAsync(string database, string table, Guid conversationId)
    {
        await using var connection = new SqliteConnection($"Data Source={PathOf(database)};Pooling=False");
        await connection.OpenAsync();
        var column = table == "messages" ? "conversation_id" : "id";
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {table} WHERE {column} = @id";
        command.Parameters.AddWithValue("@id", conversationId.ToString("D"));
        return (long)(await command.ExecuteScalarAsync())!;
    }

    // Closing the connection mid-transaction, as a client that goes away does: SQLite rolls the transaction back.
    protected override Task BreakConnectionAsync(DbConnection connection) => connection.CloseAsync();

    [Fact]
    public async Task The_database_is_a_file_in_wal_mode_that_passes_the_integrity_check()
    {
        var conversation = await Store.CreateAsync("alice", "chat");
        await Store.AppendMessageAsync("alice", conversation.Id, MessageRole.User, "hi");

        Assert.Equal(PathOf("main"), ((SqliteConversationStore)Store).DatabasePath);
        Assert.True(File.Exists(PathOf("main")));
        Assert.Equal("wal", await SqliteIntegrity.ScalarAsync(PathOf("main"), "PRAGMA journal_mode"));
        Assert.Equal("ok", await SqliteIntegrity.ScalarAsync(PathOf("main"), "PRAGMA integrity_check"));
    }

    [Fact]
    public async Task The_registration_defaults_to_sqlite_in_the_data_directory_and_migrates_at_start()
    {
        var dataDirectory = Path.Combine(_directory, "data-dir");
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Data:Directory"] = dataDirectory })
            .Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddConversationStore(configuration);
        await using (var provider = services.BuildServiceProvider())
        {
            foreach (var hosted in provider.GetServices<IHostedService>()) await hosted.StartAsync(CancellationToken.None);
            var store = provider.GetRequiredService<IConversationStore>();
            Assert.IsType<SqliteConversationStore>(store);
            await store.CreateAsync("alice", "registered");
        }

        Assert.True(File.Exists(Path.Combine(dataDirectory, SqliteConversationStore.FileName)));
    }

    [Fact]
    public void The_registration_refuses_a_connection_string_it_cannot_place()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Conversations"] = "Endpoint=somewhere" })
            .Build();

        var error = Assert.Throws<InvalidOperationException>(() => ConversationStoreServiceCollectionExtensions.CreateStore(configuration));
        Assert.Contains("ConnectionStrings:Conversations", error.Message);
    }
}
