using Grpc.Core;
using ChatServices.Protos.Chat.V1;

[assembly: CollectionBehavior(DisableTestParallelization = true)] // whole systems: one at a time on small machines

namespace ChatServices.EndToEnd.Tests.Infrastructure;

/// <summary>One running system (SQLite store) shared by the tests of a collection.</summary>
public sealed class ChatSystemFixture : IAsyncLifetime
{
    private ChatSystem? _system;

    public ChatSystem System => _system ?? throw new InvalidOperationException("The system did not start.");

    public async Task InitializeAsync() => _system = await ChatSystem.StartAsync();

    public async Task DisposeAsync()
    {
        if (_system is not null) await _system.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ChatSystemCollection : ICollectionFixture<ChatSystemFixture>
{
    public const string Name = "chat system";
}

/// <summary>What one Chat call streamed.</summary>
public sealed record ChatOutcome(ChatStarted Started, string Text, IReadOnlyList<ChatFinished> Finished, ChatUsage Usage);

public static class DialogueClientExtensions
{
    /// <summary>Runs one Chat call to its end and gathers what it streamed, checking the event order.</summary>
    public static async Task<ChatOutcome> ChatToEndAsync(this Protos.Chat.V1.Dialogue.DialogueClient client, ChatRequest request, CancellationToken cancellationToken = default)
    {
        using var call = client.Chat(request, deadline: DateTime.UtcNow.AddMinutes(2), cancellationToken: cancellationToken);
        ChatStarted? started = null;
        ChatUsage? usage = null;
        var text = new System.Text.StringBuilder();
        var finished = new List<ChatFinished>();
        await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            switch (e.EventCase)
            {
                case ChatEvent.EventOneofCase.Started:
                    Assert.Null(started);
                    started = e.Started;
                    break;
                case ChatEvent.EventOneofCase.Delta:
                    Assert.NotNull(started);
                    Assert.Empty(finished);
                    text.Append(e.Delta.Text);
                    break;
                case ChatEvent.EventOneofCase.Finished:
                    finished.Add(e.Finished);
                    break;
                case ChatEvent.EventOneofCase.Usage:
                    usage = e.Usage;
                    break;
            }
        }
        Assert.NotNull(started);
        Assert.NotNull(usage);
        return new ChatOutcome(started, text.ToString(), finished, usage);
    }
}
