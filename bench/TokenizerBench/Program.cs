// Tokenizer benchmark: tokens/s of Tokenizer.Encode against the reference implementation (npm
// @huggingface/transformers, timed inside node, load time excluded) on the same corpus in the same run, for the
// GPT-2, Llama 2, Llama 3 and Qwen 3 tokenizers. Prints a table and writes bench/results/tokenizer.md.
//
// usage: dotnet run -c Release --project bench/TokenizerBench [-- --seconds 2 --megabytes 0.5 --rounds 3]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using ChatServices.DialogueService.Tests.Tokenization;
using ChatServices.DialogueService.Tokenization;

var seconds = ArgValue("--seconds", 2.0);
var megabytes = ArgValue("--megabytes", 0.5);
var rounds = (int)ArgValue("--rounds", 3);
var repoRoot = FindRepoRoot();
var machine = Machine();
var corpus = BuildCorpus(repoRoot, (int)(megabytes * 1024 * 1024));
var corpusBytes = corpus.Sum(t => (long)Encoding.UTF8.GetByteCount(t));
Console.WriteLine($"corpus: {corpus.Count} texts, {corpusBytes / 1048576.0:F2} MB UTF-8; {seconds:F1} s timed per side and tokenizer");

var rows = new List<string>();
var countMismatches = new List<string>();
foreach (var name in TokenizerFiles.Names)
{
    var (tokenizerPath, configPath) = TokenizerFiles.Get(repoRoot, name);
    var referenceTask = ReferenceTokenizer.BenchAsync(repoRoot, name, corpus, seconds, rounds);
    var load = Stopwatch.StartNew();
    var tokenizer = Tokenizer.Load(tokenizerPath, configPath);
    load.Stop();
    var reference = await referenceTask; // node runs first, alone: the two sides never share the CPU
    var (ours, tokensPerPass) = Measure(tokenizer, corpus, seconds, rounds);
    var referenceRate = reference.Rounds.Max(r => r.TokensPerSecond);
    var referencePerPass = reference.TokensPerPass;
    if (referencePerPass != tokensPerPass)
    {
        countMismatches.Add($"{name}: {tokensPerPass} tokens per pass here, {referencePerPass} in the reference");
        Console.Error.WriteLine("warning: " + countMismatches[^1]);
    }
    rows.Add($"| {name} | {tokensPerPass:N0} | {ours / 1e6:F2} M | {referenceRate / 1e6:F2} M | {ours / referenceRate:F1}× | {corpusBytes * (ours / tokensPerPass) / 1048576.0:F1} | {load.ElapsedMilliseconds:N0} |");
    Console.WriteLine(rows[^1]);
}

var table = new StringBuilder()
    .AppendLine("| tokenizer | tokens per pass | ours (tokens/s) | reference (tokens/s) | speed-up | ours (MB/s) | load (ms) |")
    .AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
rows.ForEach(r => table.AppendLine(r));
var report = $"""
    # Tokenizer encoding throughput

    `Tokenizer.Encode` (src/DialogueService/Tokenization) against the reference implementation, npm
    `@huggingface/transformers` 4.3.1 (`PreTrainedTokenizer.encode`, in node), on the same corpus in the same run:
    {corpus.Count} texts, {corpusBytes / 1048576.0:F2} MB of UTF-8 (the conformance corpus — English, CJK, Arabic, Hindi,
    mixed scripts, emoji, code, whitespace runs, random Unicode, recombined words — repeated with per-copy variations). Each side encodes
    the corpus once to warm up (JIT, BPE caches), then in a loop for {seconds:F1} s on one thread, split into {rounds}
    rounds of which the fastest counts (the machine is shared); load time excluded. Node runs first, alone, then .NET.
    Special tokens are not added; special-token strings in the text are parsed (the reference always does).
    Tokens per pass, compared between the two sides: {(countMismatches.Count == 0 ? "identical for every tokenizer" : "DIFFERENT — " + string.Join("; ", countMismatches))}.

    {table}
    Machine: {machine}.
    Reproduce: `dotnet run -c Release --project bench/TokenizerBench` (options `--seconds`, `--megabytes`, `--rounds`).
    """;
var resultsPath = Path.Combine(repoRoot, "bench", "results", "tokenizer.md");
Directory.CreateDirectory(Path.GetDirectoryName(resultsPath)!);
File.WriteAllText(resultsPath, report.Replace("\r\n", "\n"));
Console.WriteLine();
Console.WriteLine(table);
Console.WriteLine($"written to {resultsPath}");

/// <summary>Best of <paramref name="rounds"/> timed rounds (the machine may be shared: the best round is the one
/// least disturbed), after a warm-up pass.</summary>
static (double TokensPerSecond, long TokensPerPass) Measure(Tokenizer tokenizer, IReadOnlyList<string> corpus, double seconds, int rounds)
{
    var ids = new List<int>(1 << 16);
    long perPass = 0;
    foreach (var text in corpus) // warm-up pass, also the token count per pass
    {
        ids.Clear();
        tokenizer.Encode(text, ids, addSpecialTokens: false, parseSpecialTokens: true);
        perPass += ids.Count;
    }
    var best = 0.0;
    for (var round = 0; round < rounds; round++)
    {
        long tokens = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            foreach (var text in corpus)
            {
                ids.Clear();
                tokenizer.Encode(text, ids, addSpecialTokens: false, parseSpecialTokens: true);
                tokens += ids.Count;
            }
        } while (clock.Elapsed.TotalSeconds < seconds / rounds);
        best = Math.Max(best, tokens / clock.Elapsed.TotalSeconds);
    }
    return (best, perPass);
}

/// <summary>The conformance corpus repeated up to the target size; each copy varies (a copy number, shuffled
/// order) so that the corpus is not one text's cache hits.</summary>
static List<string> BuildCorpus(string repoRoot, int targetBytes)
{
    var baseTexts = TokenizerCorpus.All(repoRoot).Where(t => t.Length > 0).ToList();
    var random = new Random(7);
    var texts = new List<string>();
    long bytes = 0;
    for (var copy = 0; bytes < targetBytes; copy++)
        foreach (var t in baseTexts.OrderBy(_ => random.Next()))
        {
            var text = copy == 0 ? t : $"{t} ({copy})";
            texts.Add(text);
            bytes += Encoding.UTF8.GetByteCount(text);
        }
    return texts;
}

static string Machine()
{
    var cpu = File.Exists("/proc/cpuinfo")
        ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
        : null;
    var node = Process.Start(new ProcessStartInfo("node", "--version") { RedirectStandardOutput = true })!;
    var nodeVersion = node.StandardOutput.ReadToEnd().Trim();
    node.WaitForExit();
    var load = File.Exists("/proc/loadavg") ? $", load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the start" : "";
    return $"{cpu ?? RuntimeInformation.ProcessArchitecture.ToString()}, {Environment.ProcessorCount} logical cores (shared{load}), " +
           $"{RuntimeInformation.OSDescription}, .NET {Environment.Version}, node {nodeVersion}";
}

double ArgValue(string name, double fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static string FindRepoRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "ChatServices.sln"))) return dir.FullName;
    throw new InvalidOperationException("ChatServices.sln not found");
}
