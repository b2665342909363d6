using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using ChatServices.DialogueService.Tests;

namespace ChatServices.EndToEnd.Tests.Infrastructure;

/// <summary>
/// One service of the system running as its own process (<c>dotnet Service.dll</c> from its build output), on a
/// loopback port the process itself bound, with its output kept for failure messages.
/// </summary>
public sealed partial class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServiceProcess(string name, Process process)
    {
        Name = name;
        _process = process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    /// <summary>The main port (gRPC or the Gateway's HTTP), as the process bound it.</summary>
    public int Port { get; private set; }
    public Uri Address => new($"http://127.0.0.1:{Port}");
    public bool HasExited => _process.HasExited;
    public int ProcessId => _process.Id;

    /// <summary>The process's output so far (its log), for assertion messages.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>
    /// Starts <paramref name="name"/> (a project under src/) with the given configuration and returns once it listens.
    /// Every endpoint is bound to port 0 by the process itself (<see cref="AnyPort"/> as its URL), so no port is
    /// chosen here and then taken by someone else before the process binds it; the bound addresses are read from the
    /// process's own "Now listening on" lines. The main endpoint is the one that is not the HTTP/1.1 management
    /// endpoint (<paramref name="http2"/>: the gRPC services, whose main endpoint speaks only HTTP/2).
    /// </summary>
    public static async Task<ServiceProcess> StartAsync(string name, IReadOnlyDictionary<string, string> environment, bool http2)
    {
        var configuration = typeof(ServiceProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var directory = Path.Combine(TestPaths.RepoRoot, "src", name, "bin", configuration, "net10.0");
        var dll = Path.Combine(directory, name + ".dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} is missing: build the solution first.", dll);

        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["Logging__Console__FormatterName"] = "simple";
        foreach (var (key, value) in environment) start.Environment[key] = value;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start");
        var service = new ServiceProcess(name, process);
        try
        {
            service.Port = await service.MainPortAsync(http2, TimeSpan.FromSeconds(60));
            return service;
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
    }

    /// <summary>The URL that lets the process bind a port of the OS's choosing on loopback.</summary>
    public const string AnyPort = "http://127.0.0.1:0";

    private async Task<int> MainPortAsync(bool http2, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode}:\n{Output}");
            var text = Output;
            if (text.Contains("Application started.", StringComparison.Ordinal))
            {
                var ports = ListeningOn().Matches(text).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Distinct().ToList();
                if (!http2 && ports.Count == 1) return ports[0];
                // The management endpoint answers HTTP/1.1; the gRPC endpoint speaks only HTTP/2 and refuses it.
                var main = new List<int>();
                foreach (var port in ports)
                    if (!await AnswersHttp11Async(port)) main.Add(port);
                if (main.Count == 1) return main[0];
                throw new InvalidOperationException($"{Name}: cannot tell its main endpoint among ports {string.Join(", ", ports)}:\n{text}");
            }
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"{Name} did not start listening within {timeout.TotalSeconds:0} s:\n{text}");
            await Task.Delay(50);
        }
    }

    private static async Task<bool> AnswersHttp11Async(int port)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            // An HTTP/2-only endpoint refuses the request (or answers it with an error status).
            using var response = await client.GetAsync($"http://127.0.0.1:{port}/healthz");
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"Now listening on: http://127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningOn();

    /// <summary>Waits until <c>/readyz</c> answers 200 (over HTTP/2 cleartext for the gRPC services).</summary>
    public async Task WaitUntilReadyAsync(bool http2, TimeSpan timeout)
    {
        using var client = new HttpClient(new SocketsHttpHandler()) { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode}:\n{Output}");
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Address, "/readyz"));
                if (http2)
                {
                    request.Version = HttpVersion.Version20;
                    request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
                }
                using var response = await client.SendAsync(request);
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{Name} was not ready within {timeout.TotalSeconds:0} s:\n{Output}");
    }

    /// <summary>Ends the process at once, as a crash or an OOM kill would (SIGKILL).</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>Asks the process to stop, as Kubernetes does when a pod is deleted (SIGTERM): it drains, then exits.</summary>
    public void Terminate()
    {
        if (SendSignal(_process.Id, SigTerm) != 0) throw new InvalidOperationException($"kill(SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Waits for the process to exit on its own and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds:0} s:\n{Output}");
        }
        return _process.ExitCode;
    }

    private const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);


    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            if (_output.Length < 1 << 20) _output.AppendLine(line);
        }
    }
}
