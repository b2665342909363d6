using System.Data.Common;
using ChatServices.DialogueService.Conversations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace ChatServices.DialogueService.Tests.Conversations;

/// <summary>
/// The store behaviour against a real PostgreSQL server. Each test works in schemas of its own
/// (<c>search_path</c>), dropped afterwards, so tests are independent of each other and of earlier runs.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresConversationStoreTests(PostgresServerFixture server) : ConversationStoreTests
{
    private readonly string _prefix = "t" + Guid.NewGuid().ToString("N")[..12];
    private readonly HashSet<string> _schemas = [];
    private string _serverConnectionString = "";

    public override async Task InitializeAsync()
    {
        _serverConnectionString = server.RequireConnectionString();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await using var connection = new NpgsqlConnection(_serverConnectionString);
        await connection.OpenAsync();
        foreach (var schema in _schemas)
        {
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }
    }

    protected override async Task<SqlConversationStore> CreateStoreAsync(string database) =>
        new PostgresConversationStore(await ConnectionStringAsync(database));

    protected override IReadOnlyList<SchemaMigration> Schema => PostgresSchema.Migrations;

    protected override async Task<long> CountRowsAsync(string database, string table, Guid conversationId)
    {
        await using var connection = new NpgsqlConnection(await ConnectionStringAsync(database));
        await connection.OpenAsync();
        var column = table == "messages" ? "conversation_id" : "id";
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table} WHERE {column} = @id", connection);
        command.Parameters.AddWithValue("id", conversationId);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    // The server ends the session (as when the client host dies or the network drops): PostgreSQL then aborts
    // the session's open transaction.
    protected override async Task BreakConnectionAsync(DbConnection connection)
    {
        await using var admin = new NpgsqlConnection(_serverConnectionString);
        await admin.OpenAsync();
        await using var kill = new NpgsqlCommand("SELECT pg_terminate_backend(@pid)", admin);
        kill.Parameters.AddWithValue("pid", ((NpgsqlConnection)connection).ProcessID);
        Assert.True((bool)(await kill.ExecuteScalarAsync())!);
    }

    private async Task<string> ConnectionStringAsync(string database)
    {
        var schema = $"{_prefix}_{database}";
        if (_schemas.Add(schema))
        {
            await using var connection = new NpgsqlConnection(_serverConnectionString);
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE SCHEMA {schema}", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(_serverConnectionString) { SearchPath = schema }.ConnectionString;
    }

    [Fact]
    public async Task The_registration_picks_postgres_for_a_postgres_connection_string_and_migrates_at_start()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Conversations"] = await ConnectionStringAsync("registered"),
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddConversationStore(configuration);
        await using var provider = services.BuildServiceProvider();

        foreach (var hosted in provider.GetServices<IHostedService>()) await hosted.StartAsync(CancellationToken.None);
        var store = provider.GetRequiredService<IConversationStore>();

        Assert.IsType<PostgresConversationStore>(store);
        var conversation = await store.CreateAsync("alice", "registered");
        Assert.Equal(1, await CountRowsAsync("registered", "conversations", conversation.Id));
    }
}
