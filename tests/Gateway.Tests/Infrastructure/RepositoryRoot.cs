namespace ChatServices.Gateway.Tests.Infrastructure;

public static class RepositoryRoot
{
    /// <summary>The folder holding ChatServices.sln, found from the test assembly upwards.</summary>
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "ChatServices.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("ChatServices.sln not found above " + AppContext.BaseDirectory);
    }
}
