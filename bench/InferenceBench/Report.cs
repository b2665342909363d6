using System.Reflection;
using System.Text;
using System.Text.Json;
using ChatServices.InferenceService.Engine;

namespace ChatServices.InferenceBench;

/// <summary>Collects the measured figures and renders bench/results/inference.md.</summary>
public sealed class Report(Machine machine, long weightBytes, bool quick, string loadAtStart)
{
    private string _loadAtEnd = "";
    private string _raw = "";

    public void Finished(string loadAverage, string rawOutput) => (_loadAtEnd, _raw) = (loadAverage, rawOutput);

    private readonly StringBuilder _single = new();
    private readonly StringBuilder _concurrency = new();
    private readonly StringBuilder _context = new();
    private readonly StringBuilder _chat = new();

    /// <summary>The versions this process runs: the loaded native ONNX Runtime, and the GenAI package as restored
    /// (its managed assembly carries no version), read from the program's deps.json.</summary>
    private static readonly string OrtVersion = Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetVersionString();
    private static readonly string GenAiVersion = PackageVersion("Microsoft.ML.OnnxRuntimeGenAI.Managed");

    private static string PackageVersion(string package)
    {
        var deps = Path.Combine(AppContext.BaseDirectory, $"{Assembly.GetEntryAssembly()!.GetName().Name}.deps.json");
        using var json = JsonDocument.Parse(File.ReadAllBytes(deps));
        var library = json.RootElement.GetProperty("libraries").EnumerateObject()
            .FirstOrDefault(l => l.Name.StartsWith(package + "/", StringComparison.Ordinal));
        return library.Value.ValueKind == JsonValueKind.Undefined ? "?" : library.Name.Split('/')[1];
    }

    private double BoundTokensPerSecond => machine.TriadGBps * 1e9 / weightBytes;

    public void SingleStream(DecodeRate ours, DecodeRate theirs)
    {
        _single.AppendLine($"| InferenceService engine | {ours.TokensPerSecond:F1} | {ours.StepMilliseconds:F2} | {ours.TokensPerSecond / BoundTokensPerSecond:P0} |");
        _single.AppendLine($"| ONNX Runtime GenAI {GenAiVersion} | {theirs.TokensPerSecond:F1} | {theirs.StepMilliseconds:F2} | {theirs.TokensPerSecond / BoundTokensPerSecond:P0} |");
        _single.AppendLine($"| memory-bandwidth bound | {BoundTokensPerSecond:F1} | {1000 / BoundTokensPerSecond:F2} | 100% |");
        _single.AppendLine();
        _single.AppendLine($"Engine / GenAI: **{ours.TokensPerSecond / theirs.TokensPerSecond:F2}x**.");
    }

    public void Concurrency(int streams, int newTokens, LoadResult ours, LoadResult theirs) =>
        _concurrency.AppendLine(
            $"| {streams} | {ours.Requests} × {newTokens} | {ours.TokensPerSecond:F0} | {theirs.TokensPerSecond:F0} | **{ours.TokensPerSecond / theirs.TokensPerSecond:F2}x** | " +
            $"{ours.TtftP50:F0} / {ours.TtftP99:F0} | {theirs.TtftP50:F0} / {theirs.TtftP99:F0} |");

    public void Context(int context, DecodeRate rate) =>
        _context.AppendLine($"| {context} | {rate.StepMilliseconds:F2} | {rate.TokensPerSecond:F1} | {rate.PrefillMilliseconds:F0} |");

    public void Chat(bool caching, ChatResult r, EngineStatus status) =>
        _chat.AppendLine(
            $"| {(caching ? "on" : "off")} | {r.Requests} | {r.Seconds:F2} | {r.PromptTokens} | {r.CachedTokens} ({(double)r.CachedTokens / r.PromptTokens:P0}) | " +
            $"{r.TtftP50:F0} / {r.TtftP99:F0} | {r.Generated / r.Seconds:F0} | {status.PrefixHitRate:P0} |");

    public string ToMarkdown() => $"""
        # InferenceService engine benchmarks{(quick ? " (quick run)" : "")}

        Written by `dotnet run -c Release --project bench/InferenceBench{(quick ? " -- --quick" : "")}` on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.
        CPU execution provider, ONNX Runtime {OrtVersion}, float32 random `bench-25m` model from tools/ModelBuilder
        (8 layers, hidden 256, 4 heads / 2 KV heads of 64, MLP 1024, vocabulary 32000, context 4096;
        {weightBytes / 1e6:F1} MB of weights). Both systems run greedy decoding on the same model folder in the same
        process, one after the other; each scenario is preceded by a warm-up request.

        ## Machine

        | cores (nproc) | CPU | memory | STREAM triad | STREAM copy |
        | --- | --- | --- | --- | --- |
        | {machine.Cores} | {machine.Cpu} | {machine.MemoryGiB:F1} GiB | {machine.TriadGBps:F1} GB/s | {machine.CopyGBps:F1} GB/s |

        Bandwidth: STREAM-style triad and copy in C# over 3 × 128 MiB arrays on every core, best of 5.
        The machine is shared with other builds and tests: load average (1, 5, 15 min) {loadAtStart} at the start and
        {_loadAtEnd} at the end of the run. To keep the comparison fair under that noise, each comparison alternates
        the two systems {(quick ? "once" : "three times")} and reports each system's best repetition.

        ## Single-stream decode

        Decode reads every weight once per token, so one stream cannot beat bandwidth / weight bytes. A share above 100 %
        means the triad figure understates what decoding gets: the triad also writes (and write-allocates) a third of its
        traffic while decoding only reads, and this shared virtual machine's bandwidth varies from minute to minute.
        Prompt 16 tokens, 128 generated; rate measured between the first and the last generated token; best of
        {(quick ? 1 : 5)} alternating repetitions.

        | system | tokens/s | ms/token | of the bandwidth bound |
        | --- | --- | --- | --- |
        {_single}
        ## Concurrent streams

        Each stream is a client sending greedy requests (prompt 32 tokens) one after the other. Aggregate tokens/s over
        the wall time of the scenario; time to first token (TTFT) from submission, per request, in ms.
        GenAI serves each request with its own `Generator` on its own thread (GenAI has no cross-request batching);
        the engine batches all streams continuously.

        | streams | requests × new tokens | engine tok/s | GenAI tok/s | engine / GenAI | engine TTFT p50 / p99 | GenAI TTFT p50 / p99 |
        | --- | --- | --- | --- | --- | --- | --- |
        {_concurrency}
        ## Step time as the context grows

        One stream; the prompt fills the context up to 32 tokens before the given length (prefilled in chunks of 512),
        then 32 tokens are decoded.

        | context tokens | decode ms/step | tokens/s | prefill (TTFT) ms |
        | --- | --- | --- | --- |
        {_context}
        ## Chat-shaped workload

        8 conversations in parallel, each turn re-sending the whole history (a 96-token system prompt, then 32-token
        user messages and 32-token replies); the engine with prefix caching on and off.

        | prefix caching | requests | wall s | prompt tokens | served from cache | TTFT p50 / p99 ms | output tok/s | hit rate |
        | --- | --- | --- | --- | --- | --- | --- | --- |
        {_chat}
        ## Raw output

        ```
        {_raw.TrimEnd()}
        ```
        """;
}
