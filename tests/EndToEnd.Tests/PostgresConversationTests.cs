using ChatServices.DialogueService.Tests.Conversations;
using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using Npgsql;

namespace ChatServices.EndToEnd.Tests;

/// <summary>The same multi-turn flow with DialogueService storing conversations in a real PostgreSQL server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresConversationTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_multi_turn_conversation_is_stored_in_postgresql()
    {
        var (_, connectionString) = await postgres.CreateDatabaseAsync("e2e_");

        await using var system = await ChatSystem.StartAsync(connectionString);
        var client = system.DialogueClient;
        var conversation = await client.CreateConversationAsync(new CreateConversationRequest { OwnerId = "pg-user" });
        var settings = new GenerationSettings { MaxTokens = 8, Temperature = 0 };
        var first = await client.ChatToEndAsync(new ChatRequest { OwnerId = "pg-user", ConversationId = conversation.Id, UserMessage = "First question", Settings = settings });
        var second = await client.ChatToEndAsync(new ChatRequest { OwnerId = "pg-user", ConversationId = conversation.Id, UserMessage = "Second question", Settings = settings });

        await using var check = new NpgsqlConnection(connectionString);
        await check.OpenAsync();
        await using var query = new NpgsqlCommand("SELECT role, content FROM messages WHERE conversation_id = @id ORDER BY seq", check);
        query.Parameters.AddWithValue("id", Guid.Parse(conversation.Id));
        var rows = new List<(string Role, string Content)>();
        await using (var reader = await query.ExecuteReaderAsync())
            while (await reader.ReadAsync()) rows.Add((reader.GetString(0), reader.GetString(1)));

        Assert.Equal([("user", "First question"), ("assistant", first.Text), ("user", "Second question"), ("assistant", second.Text)], rows);
    }
}
