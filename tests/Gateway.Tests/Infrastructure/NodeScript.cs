using System.Diagnostics;
using System.Text;

namespace ChatServices.Gateway.Tests.Infrastructure;

/// <summary>Runs a Node.js script from the repository (its imports resolve from the repository's node_modules).</summary>
public static class NodeScript
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Describe() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    public static async Task<Result> RunAsync(string scriptFromRepositoryRoot, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = RepositoryRoot.Path,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(RepositoryRoot.Path, scriptFromRepositoryRoot));
        foreach (var a in arguments) start.ArgumentList.Add(a);

        using var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return new Result(-1, stdout.ToString(), stderr + $"\n(timed out after {timeout.TotalSeconds:0}s)");
        }
        process.WaitForExit(); // flushes the asynchronous readers
        return new Result(process.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
