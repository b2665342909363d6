namespace ChatServices.DialogueService.Tests;

/// <summary>Locations the tests read from: the repository root and its installed npm packages.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string NodeModules => Path.Combine(RepoRoot, "node_modules");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ChatServices.sln"))) return dir.FullName;
        throw new InvalidOperationException("ChatServices.sln not found above " + AppContext.BaseDirectory);
    }
}
