using System.Diagnostics;
using System.Text.Json;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace ChatServices.Grpc.Tests.Interop;

/// <summary>
/// Runs a peer implementation nobody here wrote: Debian's python3-grpcio (gRPC C-core) under /usr/bin/python3,
/// or @grpc/grpc-js under node. The scripts live in Peers/ beside the tests.
/// </summary>
public static class PeerProcess
{
    public const string Python = "/usr/bin/python3";

    public static string PeersDirectory => Path.Combine(AppContext.BaseDirectory, "Peers");

    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "ChatServices.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("Repository root not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The descriptors of every proto the peers use, as a FileDescriptorSet file (python builds its
    /// message classes from it).</summary>
    public static string WriteDescriptorSet()
    {
        var set = new FileDescriptorSet();
        foreach (var file in new[]
                 {
                     InteropReflection.Descriptor, global::Grpc.Health.V1.HealthReflection.Descriptor,
                     global::Grpc.Reflection.V1Alpha.ReflectionReflection.Descriptor, global::Grpc.Reflection.V1.ReflectionReflection.Descriptor,
                 })
        {
            set.File.Add(FileDescriptorProto.Parser.ParseFrom(file.SerializedData));
        }

        var path = Path.Combine(Path.GetTempPath(), $"chatservices-grpc-{Environment.ProcessId}.pb");
        File.WriteAllBytes(path, set.ToByteArray());
        return path;
    }

    public static ProcessStartInfo StartInfo(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program)
        {
            WorkingDirectory = PeersDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["NODE_PATH"] = Path.Combine(RepoRoot, "node_modules");
        info.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        return info;
    }

    /// <summary>Runs a peer client to completion and returns its scenario results by name.</summary>
    public static async Task<IReadOnlyDictionary<string, JsonElement>> RunClientAsync(ProcessStartInfo info, TimeSpan timeout)
    {
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{info.FileName} did not finish in {timeout}: {await stderr}");
        }

        var results = new Dictionary<string, JsonElement>();
        foreach (var line in (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var doc = JsonDocument.Parse(line).RootElement;
            results[doc.GetProperty("scenario").GetString()!] = doc;
        }

        if (results.Count == 0)
        {
            throw new InvalidOperationException($"{info.FileName} reported nothing (exit {process.ExitCode}): {await stderr}");
        }

        return results;
    }
}

/// <summary>A peer server: started once, prints its port, stops when its stdin closes.</summary>
public sealed class PeerServer : IAsyncDisposable
{
    private readonly Process _process;

    private PeerServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public Uri Address => new($"http://127.0.0.1:{Port}");

    public static async Task<PeerServer> StartAsync(ProcessStartInfo info)
    {
        var process = Process.Start(info)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var line = await process.StandardOutput.ReadLineAsync(cts.Token);
        if (!int.TryParse(line, out var port))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{info.FileName} did not print its port (got '{line}').");
        }

        return new PeerServer(process, port);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (Exception)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}
