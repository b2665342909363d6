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
        if (args is [SqliteCrashWriter.Verb, var directory]) return await SqliteCrashWriter.RunAsync(directory);
        await Console.Error.WriteLineAsync($"usage: {SqliteCrashWriter.Verb} DIRECTORY");
        return 2;
    }
}
