using System.Diagnostics;
using ChatServices.DialogueService.Conversations;
using Microsoft.Data.Sqlite;

namespace ChatServices.DialogueService.Tests.Conversations;

/// <summary>
/// Crash safety of the SQLite store with a real crash: a child process (this test assembly run as a program, see
/// <see cref="SqliteCrashWriter"/>) writes messages as fast as it can and is killed with SIGKILL at an arbitrary
/// moment, most likely inside a transaction or its commit; and once more while it certainly holds an open write
/// transaction. The database is then reopened and checked.
/// </summary>
/// <remarks>
/// What this proves: after the process dies mid-write, SQLite recovers the file (integrity_check passes), every
/// transaction is either fully there or not at all (numbering is gapless, every message body is whole), and every
/// write the store reported as committed is there. What it does not prove: survival of an operating-system crash
/// or power loss — the kernel still holds the written pages; that rests on SQLite's fsync with synchronous=FULL.
/// </remarks>
public sealed class SqliteCrashTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "chatservices-tests", "crash-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_writer_killed_mid_write_leaves_an_intact_database_with_every_acknowledged_message()
    {
        long acknowledged = 0;
        Guid conversationId = default;
        // Three crashes at different moments; each new writer first recovers the file the previous one left.
        foreach (var commitsBeforeKill in new[] { 40, 90, 150 })
        {
            var (id, lastAcknowledged) = await RunAndKillWriterAsync(commitsBeforeKill);
            conversationId = id;
            Assert.True(lastAcknowledged >= acknowledged);
            acknowledged = lastAcknowledged;
        }
        // Killed with the append's transaction open: the number it took must not survive.
        var (_, beforeHang) = await RunAndKillWriterAsync(30, hangMidTransaction: true);
        Assert.True(beforeHang >= acknowledged);
        acknowledged = beforeHang;

        var path = Path.Combine(_directory, SqliteConversationStore.FileName);
        Assert.Equal("ok", await SqliteIntegrity.ScalarAsync(path, "PRAGMA integrity_check"));
        Assert.Equal("", await SqliteIntegrity.ScalarAsync(path, "PRAGMA foreign_key_check") ?? "");

        await using var store = SqliteConversationStore.InDirectory(_directory);
        Assert.Empty((await store.MigrateAsync()).Applied);
        var detail = await store.GetAsync(SqliteCrashWriter.Owner, conversationId, includeMessages: true);
        var messages = detail.Messages;

        // The last writer was killed in the middle of a transaction after its acknowledged writes: nothing of that
        // transaction is there, and everything acknowledged is.
        Assert.Equal(acknowledged, messages.Count);
        Assert.Equal(messages.Count, detail.Conversation.MessageCount);
        Assert.Equal(Enumerable.Range(1, messages.Count).Select(i => (long)i), messages.Select(m => m.Sequence));
        foreach (var message in messages)
        {
            if (message.Status == MessageStatus.InProgress)
                Assert.Equal("", message.Content); // a reply whose writer died during "generation"
            else
                Assert.True(SqliteCrashWriter.IsWhole(message.Content), $"message {message.Sequence} is not whole");
        }
    }

    private async Task<(Guid ConversationId, long LastAcknowledged)> RunAndKillWriterAsync(
        int commitsBeforeKill, bool hangMidTransaction = false)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(typeof(SqliteCrashTests).Assembly.Location);
        start.ArgumentList.Add(SqliteCrashWriter.Verb);
        start.ArgumentList.Add(_directory);
        if (hangMidTransaction)
        {
            start.ArgumentList.Add("--hang-mid-transaction-after");
            start.ArgumentList.Add(commitsBeforeKill.ToString());
        }
        using var writer = Process.Start(start) ?? throw new InvalidOperationException("the writer did not start");
        var stderr = writer.StandardError.ReadToEndAsync();

        Guid conversationId = default;
        long last = 0, commits = 0;
        var stoppedMidTransaction = false;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            while (await writer.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                // "conversation <id>" once, then "committed <sequence>" after each acknowledged write.
                var parts = line.Split(' ');
                if (parts[0] == "conversation") conversationId = Guid.Parse(parts[1]);
                else if (parts[0] == "committed") { last = long.Parse(parts[1]); commits++; }
                else if (parts[0] == "mid-transaction") { stoppedMidTransaction = true; break; }
                if (!hangMidTransaction && commits >= commitsBeforeKill) break;
            }
        }
        finally
        {
            writer.Kill(entireProcessTree: true); // SIGKILL: no finally blocks, no disposal, no flush
            await writer.WaitForExitAsync(CancellationToken.None);
        }
        Assert.True(commits >= commitsBeforeKill, $"the writer stopped early: {await stderr}");
        Assert.NotEqual(Guid.Empty, conversationId);
        Assert.Equal(hangMidTransaction, stoppedMidTransaction);
        return (conversationId, last);
    }
}

/// <summary>Raw reads of a SQLite file, around the store.</summary>
internal static class SqliteIntegrity
{
    public static async Task<string?> ScalarAsync(string path, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (await command.ExecuteScalarAsync())?.ToString();
    }
}
