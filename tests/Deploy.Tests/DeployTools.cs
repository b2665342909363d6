using System.Diagnostics;

namespace ChatServices.Deploy.Tests;

/// <summary>The result of one tool run.</summary>
internal sealed record ToolResult(int ExitCode, string StandardOutput, string StandardError)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";
}

/// <summary>
/// Runs the tools the deployment is checked with, from the repository root: <c>kubectl kustomize</c> and
/// <c>node deploy/validate.mjs</c>. Rendered overlays are cached: they depend only on files in the repository.
/// </summary>
internal static class DeployTools
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly Dictionary<string, string> Rendered = [];

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The overlay's manifests as <c>kubectl kustomize</c> renders them.</summary>
    public static string Render(string overlay)
    {
        lock (Rendered)
        {
            if (Rendered.TryGetValue(overlay, out var text)) return text;
            // "examples/NAME" renders deploy/k8s/examples/NAME; anything else names an overlay.
            var directory = overlay.StartsWith("examples/", StringComparison.Ordinal)
                ? Path.Combine("deploy", "k8s", overlay)
                : Path.Combine("deploy", "k8s", "overlays", overlay);
            var result = Run("kubectl", ["kustomize", directory]);
            Assert.True(result.ExitCode == 0, $"kubectl kustomize {overlay} failed: {result}");
            return Rendered[overlay] = result.StandardOutput;
        }
    }

    /// <summary>Runs deploy/validate.mjs with <paramref name="arguments"/>, feeding <paramref name="input"/> on stdin.</summary>
    public static ToolResult Validate(string? input, params string[] arguments) =>
        Run("node", [Path.Combine("deploy", "validate.mjs"), .. arguments], input);

    public static ToolResult Run(string fileName, IReadOnlyList<string> arguments, string? input = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = RepoRoot,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);

        using var process = Start(start);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (input is not null) process.StandardInput.Write(input);
        process.StandardInput.Close();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} ran longer than {Timeout}");
        }
        return new ToolResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    private static Process Start(ProcessStartInfo start)
    {
        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            // kubectl (with kustomize v5) and Node.js must be on PATH to check deploy/.
            throw new InvalidOperationException($"{start.FileName} could not be started: it is required on PATH to check deploy/", e);
        }
    }

    /// <summary>The rendered documents, without those whose text contains every one of <paramref name="markers"/>.</summary>
    public static string WithoutDocuments(string manifests, params string[] markers) =>
        string.Join("\n---\n", manifests.Split("\n---\n")
            .Where(document => !markers.All(marker => document.Contains(marker, StringComparison.Ordinal))));

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ChatServices.sln"))) return dir.FullName;
        throw new InvalidOperationException("ChatServices.sln not found above " + AppContext.BaseDirectory);
    }
}
