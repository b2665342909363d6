using ChatServices.DialogueService.Tests.Conversations;

namespace ChatServices.DialogueService.Tests;

/// <summary>
/// The test assembly run as a program (<c>dotnet exec DialogueService.Tests.dll VERB …</c>): child processes that
/// tests start and kill. The test runner itself never calls this.
/// </summary>
internal static class TestProgram
{
    public static async Task<int> Main(string[] args)
    {
        if (args is [SqliteCrashWriter.Verb, var directory]) return await SqliteCrashWriter.RunAsync(directory, null);
        if (args is [SqliteCrashWriter.Verb, var dir, "--hang-mid-transaction-after", var count])
            return await SqliteCrashWriter.RunAsync(dir, int.Parse(count));
        await Console.Error.WriteLineAsync($"usage: {SqliteCrashWriter.Verb} DIRECTORY [--hang-mid-transaction-after N]");
        return 2;
    }
}
