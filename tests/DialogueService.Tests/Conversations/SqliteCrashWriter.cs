using System.Text;
using ChatServices.DialogueService.Conversations;

namespace ChatServices.DialogueService.Tests.Conversations;

/// <summary>
/// The child process of <see cref="SqliteCrashTests"/>: writes to one conversation in a loop until killed, and
/// prints "committed N" after every write the store acknowledged. Each round appends a user message, begins an
/// assistant reply and completes it, so the kill can land in any of the three kinds of transaction.
/// With <c>hangMidTransaction</c>, the append after that many acknowledged writes stops inside its transaction
/// (the message numbered, not yet inserted), prints "mid-transaction" and waits to be killed.
/// </summary>
internal static class SqliteCrashWriter
{
    public const string Verb = "sqlite-crash-writer";
    public const string Owner = "crash-writer";

    public static async Task<int> RunAsync(string directory, int? hangMidTransaction)
    {
        await using var store = SqliteConversationStore.InDirectory(directory);
        var acknowledged = 0;
        await store.MigrateAsync();
        var existing = await store.ListAsync(Owner, 1, null);
        var conversation = existing.Conversations.Count > 0
            ? existing.Conversations[0]
            : await store.CreateAsync(Owner, "crash test");
        var output = Console.Out;
        await output.WriteLineAsync($"conversation {conversation.Id}");
        await output.FlushAsync();

        for (var round = 0; ; round++)
        {
            if (acknowledged >= hangMidTransaction)
                store.BetweenStatements = async (point, _) =>
                {
                    await output.WriteLineAsync("mid-transaction");
                    await output.FlushAsync();
                    await Task.Delay(Timeout.Infinite);
                };
            var user = await store.AppendMessageAsync(Owner, conversation.Id, MessageRole.User, Body(round));
            await Acknowledge(user.Sequence);
            var reply = await store.BeginAssistantMessageAsync(Owner, conversation.Id);
            await Acknowledge(reply.Sequence);
            var done = await store.CompleteAssistantMessageAsync(Owner, conversation.Id, reply.Id,
                new AssistantOutcome(MessageStatus.Completed, Body(round + 1), "stop", new TokenUsage(round, round)));
            await Acknowledge(done.Sequence);
        }

        async Task Acknowledge(long sequence)
        {
            await output.WriteLineAsync($"committed {sequence}");
            await output.FlushAsync();
            acknowledged++;
        }
    }

    /// <summary>
    /// A self-checking body several pages long (so one message spans several database pages): a header with its
    /// length, then a repeated line. A torn or truncated write cannot pass <see cref="IsWhole"/>.
    /// </summary>
    public static string Body(int round)
    {
        var line = $"round {round}: the quick brown fox jumps over the lazy dog\n";
        var body = new StringBuilder();
        for (var i = 0; i < 200 + round % 50; i++) body.Append(line);
        return $"{body.Length}|{body}";
    }

    public static bool IsWhole(string content)
    {
        var bar = content.IndexOf('|');
        if (bar <= 0 || !int.TryParse(content.AsSpan(0, bar), out var length)) return false;
        var body = content.AsSpan(bar + 1);
        if (body.Length != length) return false;
        var lineEnd = body.IndexOf('\n');
        if (lineEnd < 0) return false;
        var line = body[..(lineEnd + 1)];
        for (var offset = 0; offset < body.Length; offset += line.Length)
            if (!body[offset..].StartsWith(line)) return false;
        return true;
    }
}
