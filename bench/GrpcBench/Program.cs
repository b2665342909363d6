using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using ChatServices.Grpc.Bench;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;

// gRPC throughput, side by side in one run: the same Echo RPCs served by grpc-dotnet (Grpc.AspNetCore on
// Kestrel), by @grpc/grpc-js (node) and by grpcio (python, gRPC C-core), each server in its own process, all
// driven by the same client load from this process (the grpc-dotnet client, Grpc.Net.Client, over one channel).
if (args.Contains("--serve"))
{
    await BenchEchoService.ServeAsync();
    return;
}

var seconds = args.SkipWhile(a => a != "--seconds").Skip(1).Select(double.Parse).FirstOrDefault(3);
var measure = TimeSpan.FromSeconds(seconds);
var warmup = TimeSpan.FromSeconds(Math.Max(1, seconds / 4));
const int UnaryConcurrency = 64;
const int Streams = 4;

var loadAverage = File.ReadAllText("/proc/loadavg").Split(' ')[0];
var peers = Path.Combine(AppContext.BaseDirectory, "Peers");
var descriptorSet = Path.Combine(Path.GetTempPath(), $"grpc-bench-{Environment.ProcessId}.pb");
File.WriteAllBytes(descriptorSet, new FileDescriptorSet { File = { FileDescriptorProto.Parser.ParseFrom(InteropReflection.Descriptor.SerializedData) } }.ToByteArray());
var self = Environment.ProcessPath!;
var selfArgs = Path.GetFileNameWithoutExtension(self) == "dotnet" ? new[] { typeof(BenchEchoService).Assembly.Location, "--serve" } : ["--serve"];

var servers = new (string Name, string Program, string[] Args)[]
{
    ("grpc-dotnet " + GrpcDotnetVersion() + " (Grpc.AspNetCore on Kestrel, .NET " + Environment.Version + ")", self, selfArgs),
    ("@grpc/grpc-js " + NodePackageVersion("@grpc/grpc-js") + " (node " + Run("node", "--version") + ")", "node", ["node_server.js"]),
    ("grpcio " + Run("/usr/bin/python3", "-c", "import grpc; print(grpc.__version__)") + " (python, gRPC C-core)", "/usr/bin/python3", ["python_server.py", descriptorSet, "64", "--no-gzip"]),
};

var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
var rounds = args.SkipWhile(a => a != "--rounds").Skip(1).Select(int.Parse).FirstOrDefault(3);
var selected = servers.Where(s => only is null || s.Name.Contains(only, StringComparison.OrdinalIgnoreCase)).ToArray();

// The servers take turns, round after round, so that a burst of other load on the machine hits all of them
// alike; each figure is the median over the rounds. Server CPU time per call comes from /proc and is far less
// sensitive to a busy machine than throughput.
var samples = selected.ToDictionary(s => s.Name, _ => new List<Sample>());
for (var round = 0; round < rounds; round++)
{
    foreach (var (name, program, serverArgs) in selected)
    {
        Console.Error.WriteLine($"[bench] round {round + 1}/{rounds}: {name}");
        using var process = StartServer(program, serverArgs, out var port);
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var client = new Echo.EchoClient(channel);
        var (unary, unaryCpu, p50, p99) = await UnaryAsync(client, process.Id);
        var (stream, streamCpu) = await ServerStreamingAsync(client, process.Id);
        samples[name].Add(new Sample(unary, p50, p99, unaryCpu, stream, streamCpu));
        process.StandardInput.Close();
        if (!process.WaitForExit(5000))
        {
            process.Kill(entireProcessTree: true);
        }
    }
}

var rows = selected.Select(s =>
{
    var list = samples[s.Name];
    double Median(Func<Sample, double> f) => list.Select(f).Order().ElementAt(list.Count / 2);
    return (Server: s.Name, Unary: Median(x => x.Unary), P50: Median(x => x.P50), P99: Median(x => x.P99), UnaryCpu: Median(x => x.UnaryCpuMicros),
        Stream: Median(x => x.Stream), StreamCpu: Median(x => x.StreamCpuMicros));
}).ToList();

var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
var table = new StringBuilder();
table.AppendLine("| server | unary calls/s | unary p50 ms | unary p99 ms | server CPU µs per unary call | server-streaming messages/s | server CPU µs per streamed message |");
table.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (var r in rows)
{
    table.AppendLine(CultureInfo.InvariantCulture, $"| {r.Server} | {r.Unary:N0} | {r.P50:F2} | {r.P99:F2} | {r.UnaryCpu:F1} | {r.Stream:N0} | {r.StreamCpu:F2} |");
}

var ours = rows[0];
var ratios = new StringBuilder();
foreach (var r in rows.Skip(1))
{
    ratios.AppendLine(CultureInfo.InvariantCulture,
        $"- vs {r.Server}: unary throughput ×{ours.Unary / r.Unary:F2} (server CPU per call ×{ours.UnaryCpu / r.UnaryCpu:F2}), server-streaming throughput ×{ours.Stream / r.Stream:F2} (server CPU per message ×{ours.StreamCpu / r.StreamCpu:F2})");
}

// The project's own gRPC layer (ChatServices.Grpc, removed when the services moved to grpc-dotnet) and the two
// peers, as the previous version of this benchmark measured them on 2026-11-22 07:05 UTC (same command, same
// machine type, load average 22.67; the own layer's client drove all three servers then). The layer can no longer
// run side by side, so it is compared through the peers: its ratio to each peer then against grpc-dotnet's now.
var previous = new (string Server, double Unary, double P50, double P99, double UnaryCpu, double Stream, double StreamCpu)[]
{
    ("ChatServices.Grpc (own layer, Kestrel, .NET 10.0.12)", 30_865, 1.10, 14.51, 15.0, 752_963, 0.78),
    ("@grpc/grpc-js 1.14.7 (node v20.20.2)", 13_642, 2.09, 23.91, 38.1, 122_357, 3.67),
    ("grpcio 1.51.1 (python, gRPC C-core)", 8_706, 5.47, 16.63, 123.7, 43_842, 24.18),
};
var previousTable = new StringBuilder();
foreach (var r in previous)
{
    previousTable.AppendLine(CultureInfo.InvariantCulture, $"| {r.Server} | {r.Unary:N0} | {r.P50:F2} | {r.P99:F2} | {r.UnaryCpu:F1} | {r.Stream:N0} | {r.StreamCpu:F2} |");
}

var throughPeers = new StringBuilder();
throughPeers.AppendLine("| relative to | unary calls/s: own layer then | grpc-dotnet now | server CPU per call: own layer then | grpc-dotnet now | streamed messages/s: own layer then | grpc-dotnet now | server CPU per message: own layer then | grpc-dotnet now |");
throughPeers.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (var peer in rows.Skip(1))
{
    var then = previous.FirstOrDefault(p => p.Server == peer.Server);
    if (then.Server is null)
    {
        continue;
    }

    var old = previous[0];
    throughPeers.AppendLine(CultureInfo.InvariantCulture,
        $"| {peer.Server} | ×{old.Unary / then.Unary:F2} | ×{ours.Unary / peer.Unary:F2} | ×{old.UnaryCpu / then.UnaryCpu:F2} | ×{ours.UnaryCpu / peer.UnaryCpu:F2} | ×{old.Stream / then.Stream:F2} | ×{ours.Stream / peer.Stream:F2} | ×{old.StreamCpu / then.StreamCpu:F2} | ×{ours.StreamCpu / peer.StreamCpu:F2} |");
}

var markdown = $"""
# gRPC throughput: grpc-dotnet vs grpc-js vs python grpcio

Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} CPUs ({cpu}), Linux, loopback; load average
at the start {loadAverage} (the machine is shared: throughput figures are noisy, CPU per call much less so).
Each server runs in its own process; the load comes from one client process using the grpc-dotnet client
(Grpc.Net.Client, one channel, HTTP/2 cleartext), so the client side is the same for all three servers.

- unary: {UnaryConcurrency} concurrent callers, `Echo/Unary` with a 5-byte message, {warmup.TotalSeconds:F0} s warm-up then {measure.TotalSeconds:F0} s measured
- server streaming: {Streams} concurrent calls of `Echo/ServerStream`, 100,000 replies of 32-byte payload each (repeated until time is up)
- python grpcio serves with a 64-thread pool (its unary throughput is bound by the GIL either way)
- each figure is the median of {rounds} rounds; the servers take turns within each round
- server CPU = user + system time of the server process (from /proc) divided by calls or messages; lower is better

{table}
grpc-dotnet relative to the others:
{ratios}
## Against the layer grpc-dotnet replaced

The project's own layer (ChatServices.Grpc) as the previous version of this benchmark measured it, with the peers
in the same run, on 2026-11-22 07:05 UTC (same command and machine type, load average 22.67; the own layer's
client drove the three servers then, the grpc-dotnet client does now):

| server (2026-11-22) | unary calls/s | unary p50 ms | unary p99 ms | server CPU µs per unary call | server-streaming messages/s | server CPU µs per streamed message |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{previousTable}
Absolute figures from two runs on a shared machine, with different clients competing for the same 2 CPUs, do not
compare (the unchanged peers moved too); each run's ratio to the same peer does. Higher is better for throughput,
lower for CPU:

{throughPeers}
Reproduce: `dotnet run -c Release --project bench/GrpcBench{(args.Length > 0 ? " -- " + string.Join(" ", args) : "")}` (this run: {rounds} rounds; 3 rounds take about a minute and a half; `--seconds N` changes the measured time, `--rounds N` the rounds).
""";
Console.WriteLine(markdown);
var results = Path.Combine(FindRepoRoot(), "bench", "results");
Directory.CreateDirectory(results);
File.WriteAllText(Path.Combine(results, "grpc.md"), markdown);
Console.Error.WriteLine("[bench] wrote bench/results/grpc.md");

async Task<(double CallsPerSecond, double CpuMicrosPerCall, double P50, double P99)> UnaryAsync(Echo.EchoClient client, int serverPid)
{
    var request = new EchoRequest { Message = "hello" };
    var measuring = new StrongBox<bool>();
    var stop = false;
    var latencies = new List<long>[UnaryConcurrency];
    var workers = Enumerable.Range(0, UnaryConcurrency).Select(w => Task.Run(async () =>
    {
        var mine = latencies[w] = new List<long>(100_000);
        while (!Volatile.Read(ref stop))
        {
            var start = Stopwatch.GetTimestamp();
            await client.UnaryAsync(request);
            if (Volatile.Read(ref measuring.Value))
            {
                mine.Add(Stopwatch.GetTimestamp() - start);
            }
        }
    })).ToArray();
    var (elapsed, cpu) = await MeasuredWindowAsync(serverPid, measuring);
    Volatile.Write(ref stop, true);
    await Task.WhenAll(workers);
    var all = latencies.SelectMany(l => l).Order().ToArray();
    double Percentile(double p) => all.Length == 0 ? 0 : all[(int)Math.Min(all.Length - 1, all.Length * p)] * 1000.0 / Stopwatch.Frequency;
    return (all.Length / elapsed, cpu / all.Length * 1e6, Percentile(0.50), Percentile(0.99));
}

async Task<(double MessagesPerSecond, double CpuMicrosPerMessage)> ServerStreamingAsync(Echo.EchoClient client, int serverPid)
{
    long received = 0;
    var measuring = new StrongBox<bool>();
    using var stop = new CancellationTokenSource();
    var request = new EchoRequest { Message = "s", Count = 100_000, ResponseSize = 32 };
    var workers = Enumerable.Range(0, Streams).Select(_ => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            using var call = client.ServerStream(request, cancellationToken: stop.Token);
            try
            {
                while (await call.ResponseStream.MoveNext())
                {
                    if (Volatile.Read(ref measuring.Value))
                    {
                        Interlocked.Increment(ref received);
                    }
                }
            }
            catch (RpcException) when (stop.IsCancellationRequested)
            {
            }
        }
    })).ToArray();
    var (elapsed, cpu) = await MeasuredWindowAsync(serverPid, measuring);
    var count = Interlocked.Read(ref received);
    stop.Cancel();
    await Task.WhenAll(workers);
    return (count / elapsed, cpu / count * 1e6);
}

// The warm-up, then the measured window while `measuring` is set: its length and the server's CPU seconds in it.
async Task<(double Seconds, double ServerCpu)> MeasuredWindowAsync(int serverPid, StrongBox<bool> measuring)
{
    await Task.Delay(warmup);
    var cpuStart = CpuSeconds(serverPid);
    Volatile.Write(ref measuring.Value, true);
    var clock = Stopwatch.StartNew();
    await Task.Delay(measure);
    Volatile.Write(ref measuring.Value, false);
    return (clock.Elapsed.TotalSeconds, CpuSeconds(serverPid) - cpuStart);
}

// utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s).
static double CpuSeconds(int pid)
{
    var stat = File.ReadAllText($"/proc/{pid}/stat");
    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
}

Process StartServer(string program, string[] serverArgs, out int port)
{
    var info = new ProcessStartInfo(program)
    {
        WorkingDirectory = peers,
        RedirectStandardInput = true,
        RedirectStandardOutput = true,
        UseShellExecute = false,
    };
    foreach (var a in serverArgs)
    {
        info.ArgumentList.Add(a);
    }

    info.Environment["NODE_PATH"] = Path.Combine(FindRepoRoot(), "node_modules");
    info.Environment["PROTO_DIR"] = Path.Combine(AppContext.BaseDirectory, "protos");
    var process = Process.Start(info)!;
    var line = process.StandardOutput.ReadLine();
    port = int.Parse(line ?? throw new InvalidOperationException(program + " exited before printing its port"), CultureInfo.InvariantCulture);
    return process;
}

static string Run(string program, params string[] arguments)
{
    var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, UseShellExecute = false };
    foreach (var a in arguments)
    {
        info.ArgumentList.Add(a);
    }

    using var p = Process.Start(info)!;
    var output = p.StandardOutput.ReadToEnd().Trim();
    p.WaitForExit();
    return output;
}

static string GrpcDotnetVersion() =>
    typeof(GrpcChannel).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
        .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0] ?? "?";

static string NodePackageVersion(string package)
{
    var json = File.ReadAllText(Path.Combine(FindRepoRoot(), "node_modules", package, "package.json"));
    return System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("version").GetString()!;
}

static string FindRepoRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "ChatServices.sln")))
        {
            return dir.FullName;
        }
    }

    throw new InvalidOperationException("Repository root not found.");
}

internal sealed record Sample(double Unary, double P50, double P99, double UnaryCpuMicros, double Stream, double StreamCpuMicros);
