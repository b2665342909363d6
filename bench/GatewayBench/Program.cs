using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChatServices.Gateway.Bench;
using Grpc.Net.Client;
using ChatServices.Protos.Chat.V1;

// What the Gateway adds to a streamed reply, side by side in one run: the same upstream stream (FloodDialogueService,
// no model behind it) read directly over gRPC, and read through the Gateway as OpenAI Server-Sent Events. The
// Gateway runs as its own process, so its CPU time per streamed token is measured apart from everything else.
var seconds = args.SkipWhile(a => a != "--seconds").Skip(1).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).FirstOrDefault(3);
var rounds = args.SkipWhile(a => a != "--rounds").Skip(1).Select(int.Parse).FirstOrDefault(3);
const int TokensPerReply = 500;
int[] concurrencies = [1, 16, 64];

var root = FindRepositoryRoot();
var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
// --gateway PATH measures another build of the Gateway (an older commit's, say) against the same upstream and client;
// --output FILE writes the table there instead of bench/results/gateway.md.
var gatewayDll = args.SkipWhile(a => a != "--gateway").Skip(1).FirstOrDefault()
    ?? Path.Combine(root, "src", "Gateway", "bin", configuration, "net10.0", "Gateway.dll");
var loadAverage = File.ReadAllText("/proc/loadavg").Split(' ')[0];

var (upstream, upstreamAddress) = await FloodDialogueService.StartAsync();
var port = FreePort();
using var gateway = Process.Start(new ProcessStartInfo("dotnet")
{
    ArgumentList =
    {
        gatewayDll, $"--Kestrel:Endpoints:Http:Url=http://127.0.0.1:{port}", $"--Gateway:DialogueEndpoint={upstreamAddress}",
        "--Gateway:AllowAnonymousOnLoopback=true", "--Gateway:DefaultLimits:RequestsPerMinute=0", "--Gateway:DefaultLimits:TokensPerMinute=0",
        "--Logging:LogLevel:Default=Warning",
    },
    WorkingDirectory = Path.GetDirectoryName(gatewayDll),
    RedirectStandardOutput = true,
    RedirectStandardError = true,
})!;
gateway.OutputDataReceived += (_, _) => { };
gateway.ErrorDataReceived += (_, _) => { };
gateway.BeginOutputReadLine();
gateway.BeginErrorReadLine();

using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
for (var i = 0; ; i++)
{
    try
    {
        if ((await http.GetAsync("/readyz")).IsSuccessStatusCode) break;
    }
    catch (HttpRequestException) when (i < 200)
    {
    }
    if (i >= 200) throw new InvalidOperationException("the Gateway did not become ready");
    await Task.Delay(100);
}

using var channel = GrpcChannel.ForAddress(upstreamAddress);
var client = new Dialogue.DialogueClient(channel);
var chatRequest = new ChatRequest
{
    OwnerId = "bench",
    Messages = { new ChatMessage { Role = "user", Content = "hi" } },
    Settings = new GenerationSettings { MaxTokens = TokensPerReply },
};
var body = $$"""{"model":"flood","messages":[{"role":"user","content":"hi"}],"max_tokens":{{TokensPerReply}},"stream":true}""";

async Task<(int Tokens, double FirstTokenMs)> DirectAsync()
{
    var started = Stopwatch.GetTimestamp();
    double first = -1;
    var tokens = 0;
    using var call = client.Chat(chatRequest);
    while (await call.ResponseStream.MoveNext(CancellationToken.None))
    {
        if (call.ResponseStream.Current.EventCase != ChatEvent.EventOneofCase.Delta) continue;
        if (tokens++ == 0) first = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }
    return (tokens, first);
}

async Task<(int Tokens, double FirstTokenMs)> ThroughGatewayAsync()
{
    var started = Stopwatch.GetTimestamp();
    double first = -1;
    var tokens = 0;
    using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    response.EnsureSuccessStatusCode();
    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
    while (await reader.ReadLineAsync() is { } line)
    {
        if (!line.Contains("\"content\":\"tok ", StringComparison.Ordinal)) continue;
        if (tokens++ == 0) first = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }
    return (tokens, first);
}

async Task<Sample> MeasureAsync(Func<Task<(int, double)>> one, int concurrency, int? cpuOf)
{
    await RunAsync(one, concurrency, TimeSpan.FromSeconds(Math.Max(0.5, seconds / 4))); // warm-up
    var cpuBefore = cpuOf is { } pid ? CpuTicks(pid) : 0;
    var clock = Stopwatch.StartNew();
    var (tokens, firsts) = await RunAsync(one, concurrency, TimeSpan.FromSeconds(seconds));
    var elapsed = clock.Elapsed.TotalSeconds;
    var cpuMicroseconds = cpuOf is { } p ? (CpuTicks(p) - cpuBefore) * 1_000_000.0 / 100 : 0; // /proc ticks are 1/100 s
    firsts.Sort();
    return new Sample(tokens / elapsed, firsts[firsts.Count / 2], cpuOf is null ? 0 : cpuMicroseconds / tokens);
}

static async Task<(long Tokens, List<double> Firsts)> RunAsync(Func<Task<(int, double)>> one, int concurrency, TimeSpan duration)
{
    var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    long tokens = 0;
    var firsts = new List<double>();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var (n, first) = await one();
            Interlocked.Add(ref tokens, n);
            lock (firsts) firsts.Add(first);
        }
    })));
    return (tokens, firsts);
}

// Direct and Gateway take turns within each round, so a burst of other load on the machine hits both alike.
var results = new List<(int Concurrency, Sample Direct, Sample Gateway)>();
foreach (var concurrency in concurrencies)
{
    var direct = new List<Sample>();
    var viaGateway = new List<Sample>();
    for (var round = 0; round < rounds; round++)
    {
        Console.Error.WriteLine($"[bench] concurrency {concurrency}, round {round + 1}/{rounds}");
        direct.Add(await MeasureAsync(DirectAsync, concurrency, null));
        viaGateway.Add(await MeasureAsync(ThroughGatewayAsync, concurrency, gateway.Id));
    }
    results.Add((concurrency, Median(direct), Median(viaGateway)));
}

gateway.Kill();
await upstream.StopAsync();

var md = new StringBuilder();
md.AppendLine("# Gateway overhead: a streamed reply read directly over gRPC vs through the Gateway as SSE");
md.AppendLine();
md.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} CPUs, Linux, loopback, .NET {Environment.Version}; load average at the");
md.AppendLine(CultureInfo.InvariantCulture, $"start {loadAverage} (the machine is shared: throughput is noisy, the Gateway's CPU per token much less so).");
md.AppendLine();
md.AppendLine(CultureInfo.InvariantCulture, $"- upstream: a chat.v1.Dialogue that streams {TokensPerReply} four-character deltas per reply as fast as it can (no model), in this process");
md.AppendLine("- direct: this process reads `Dialogue/Chat` over gRPC (Grpc.Net.Client, one channel)");
md.AppendLine("- via Gateway: this process posts `/v1/chat/completions` with `stream: true` to the Gateway (its own process, Release build) and reads every SSE line; the Gateway reads the same upstream over gRPC");
md.AppendLine(CultureInfo.InvariantCulture, $"- {seconds:0.#} s measured after a warm-up; each figure is the median of {rounds} rounds; first token = time from sending the request to the first content delta");
md.AppendLine("- Gateway CPU = user + system time of the Gateway process (from /proc) per streamed token");
md.AppendLine();
md.AppendLine("| concurrent streams | direct gRPC tokens/s | via Gateway tokens/s | Gateway / direct | first token p50 direct ms | first token p50 via Gateway ms | Gateway CPU µs per token |");
md.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (var (concurrency, d, g) in results)
{
    md.AppendLine(CultureInfo.InvariantCulture,
        $"| {concurrency} | {d.TokensPerSecond:N0} | {g.TokensPerSecond:N0} | ×{g.TokensPerSecond / d.TokensPerSecond:0.00} | {d.FirstTokenMs:0.00} | {g.FirstTokenMs:0.00} | {g.CpuMicrosecondsPerToken:0.00} |");
}
md.AppendLine();
md.AppendLine("Reproduce: `dotnet build -c Release src/Gateway && dotnet run -c Release --project bench/GatewayBench` (`--seconds N`, `--rounds N`).");
var output = args.SkipWhile(a => a != "--output").Skip(1).FirstOrDefault() ?? Path.Combine(root, "bench", "results", "gateway.md");
Directory.CreateDirectory(Path.GetDirectoryName(output)!);
File.WriteAllText(output, md.ToString());
Console.WriteLine(md);

static Sample Median(List<Sample> samples) => new(
    samples.Select(s => s.TokensPerSecond).Order().ElementAt(samples.Count / 2),
    samples.Select(s => s.FirstTokenMs).Order().ElementAt(samples.Count / 2),
    samples.Select(s => s.CpuMicrosecondsPerToken).Order().ElementAt(samples.Count / 2));

static long CpuTicks(int pid)
{
    var stat = File.ReadAllText($"/proc/{pid}/stat");
    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime
}

static int FreePort()
{
    var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    var port = ((IPEndPoint)listener.LocalEndpoint).Port;
    listener.Stop();
    return port;
}

static string FindRepositoryRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "ChatServices.sln"))) return dir.FullName;
    }
    throw new InvalidOperationException("ChatServices.sln not found");
}

internal readonly record struct Sample(double TokensPerSecond, double FirstTokenMs, double CpuMicrosecondsPerToken);
