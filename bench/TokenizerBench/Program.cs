// Tokenizer benchmark: encoding tokens/s of HuggingFaceTokenizer (ours) against Hugging Face's Rust tokenizers
// (NuGet Tokenizers.DotNet), Microsoft.ML.Tokenizers (a BpeTokenizer built from the file where it can be; its
// TiktokenTokenizer for GPT-2) and the reference implementation (npm @huggingface/transformers, timed inside node),
// on the same corpus in the same run, for the GPT-2, Llama 2, Llama 3 and Qwen 3 tokenizers. Also counts on how many
// conformance-corpus texts the library's BpeTokenizer gives our ids. Prints the tables and writes
// bench/results/tokenizer.md.
//
// usage: dotnet run -c Release --project bench/TokenizerBench [-- --seconds 2 --megabytes 0.5 --rounds 3]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using ChatServices.DialogueService.Tests.Tokenization;
using ChatServices.DialogueService.Tokenization;
using Microsoft.ML.Tokenizers;

var seconds = ArgValue("--seconds", 2.0);
var megabytes = ArgValue("--megabytes", 0.5);
var rounds = (int)ArgValue("--rounds", 3);
var repoRoot = FindRepoRoot();
var machine = Machine();
var started = DateTime.UtcNow;
var corpus = BuildCorpus(repoRoot, (int)(megabytes * 1024 * 1024));
var corpusBytes = corpus.Sum(t => (long)Encoding.UTF8.GetByteCount(t));
var conformance = TokenizerCorpus.All(repoRoot);
Console.WriteLine($"corpus: {corpus.Count} texts, {corpusBytes / 1048576.0:F2} MB UTF-8; {seconds:F1} s timed per side and tokenizer");

var rows = new List<string>();
var countRows = new List<string>();
var notes = new List<string>();
foreach (var name in TokenizerFiles.Names)
{
    var (tokenizerPath, configPath) = TokenizerFiles.Get(repoRoot, name);
    var referenceTask = ReferenceTokenizer.BenchAsync(repoRoot, name, corpus, seconds, rounds);
    var reference = await referenceTask; // node runs first, alone: no two sides ever share the CPU

    var clock = Stopwatch.StartNew();
    var ours = HuggingFaceTokenizer.Load(tokenizerPath, configPath);
    var oursLoad = clock.ElapsedMilliseconds;
    var ids = new List<int>(1 << 16);
    var (oursRate, oursPerPass) = Measure(text =>
    {
        ids.Clear();
        ours.Encode(text, ids, addSpecialTokens: false, parseSpecialTokens: true);
        return ids.Count;
    }, corpus, seconds, rounds);

    clock.Restart();
    var rust = new Tokenizers.DotNet.Tokenizer(vocabPath: tokenizerPath);
    var rustLoad = clock.ElapsedMilliseconds;
    var (rustRate, rustPerPass) = Measure(text => rust.Encode(text).Length, corpus, seconds, rounds);

    clock.Restart();
    Tokenizer? library = name == "gpt2" ? TiktokenTokenizer.CreateForModel("gpt2") : LibraryBpeFromTokenizerJson.Create(tokenizerPath);
    var libraryLoad = clock.ElapsedMilliseconds;
    var libraryKind = name == "gpt2" ? "TiktokenTokenizer" : library is null ? "—" : "BpeTokenizer";
    var (libraryRate, libraryPerPass) = library is null ? (0.0, 0L) : Measure(text => library.EncodeToIds(text).Count, corpus, seconds, rounds);

    var bpe = name == "gpt2" ? LibraryBpeFromTokenizerJson.Create(tokenizerPath) : library as BpeTokenizer;
    var bpeMatches = bpe is null ? "— (needs the SentencePiece .model)"
        : $"{conformance.Count(t => bpe.EncodeToIds(t).SequenceEqual(ours.Encode(t, addSpecialTokens: false, parseSpecialTokens: true)))} of {conformance.Count}";
    var tiktokenMatches = name == "gpt2"
        ? $"; TiktokenTokenizer: {conformance.Count(t => library!.EncodeToIds(t).SequenceEqual(ours.Encode(t, addSpecialTokens: false, parseSpecialTokens: true)))} of {conformance.Count}"
        : "";

    var referenceRate = reference.Rounds.Max(r => r.TokensPerSecond);
    rows.Add($"| {name} | {oursRate / 1e6:F2} M | {rustRate / 1e6:F2} M | {oursRate / rustRate:F1}× | " +
             (library is null ? "— | — | " : $"{libraryRate / 1e6:F2} M ({libraryKind}) | {oursRate / libraryRate:F1}× | ") +
             $"{referenceRate / 1e6:F2} M | {oursRate / referenceRate:F1}× | {corpusBytes * (oursRate / oursPerPass) / 1048576.0:F1} | " +
             $"{oursLoad:N0} / {rustLoad:N0} / {(library is null ? "—" : libraryLoad.ToString("N0", CultureInfo.InvariantCulture))} |");
    countRows.Add($"| {name} | {oursPerPass:N0} | {reference.TokensPerPass:N0} | {rustPerPass:N0} | {(library is null ? "—" : libraryPerPass.ToString("N0", CultureInfo.InvariantCulture))} | {bpeMatches}{tiktokenMatches} |");
    if (reference.TokensPerPass != oursPerPass) notes.Add($"{name}: ours {oursPerPass} tokens per pass, the reference {reference.TokensPerPass}");
    Console.WriteLine(rows[^1]);
    Console.WriteLine(countRows[^1]);
    rust.Dispose();
}

var table = new StringBuilder()
    .AppendLine("| tokenizer | ours (tokens/s) | HF Rust (tokens/s) | ours ÷ Rust | Microsoft.ML.Tokenizers (tokens/s) | ours ÷ ML | transformers.js (tokens/s) | ours ÷ JS | ours (MB/s) | load ours / Rust / ML (ms) |")
    .AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
rows.ForEach(r => table.AppendLine(r));
var counts = new StringBuilder()
    .AppendLine("| tokenizer | ours | transformers.js | HF Rust | Microsoft.ML.Tokenizers | ML BpeTokenizer built from the file: conformance texts with our ids |")
    .AppendLine("| --- | ---: | ---: | ---: | ---: | --- |");
countRows.ForEach(r => counts.AppendLine(r));
var report = $"""
    # Tokenizer encoding throughput

    `HuggingFaceTokenizer.Encode` (src/DialogueService/Tokenization) against Hugging Face's Rust `tokenizers` (NuGet
    Tokenizers.DotNet 1.4.1, native linux-x64 library, called from .NET), Microsoft.ML.Tokenizers 3.0.0 (GPT-2: its
    `TiktokenTokenizer` for "gpt2", exact; Llama 3, Qwen 3: a `BpeTokenizer` built by hand from the file's vocabulary,
    merges and split regex, which is fast but not exact — see the second table; Llama 2: none, the library needs the
    SentencePiece `.model`) and npm `@huggingface/transformers` 4.3.1 (`PreTrainedTokenizer.encode`, in node), on the
    same corpus in the same run: {corpus.Count} texts, {corpusBytes / 1048576.0:F2} MB of UTF-8 (the conformance corpus — English, CJK,
    Arabic, Hindi, mixed scripts, emoji, code, whitespace runs, random Unicode, recombined words — repeated with per-copy
    variations; lone surrogates replaced by U+FFFD, which a Rust string cannot hold). Each side encodes the corpus once
    to warm up, then in a loop for {seconds:F1} s on one thread, split into {rounds} rounds of which the fastest counts (the
    machine is shared); load time excluded from rates. Node runs first, alone, then the .NET sides one after another.
    Special-token strings in the text are parsed by every side; special tokens are not added, except by the Rust
    library, whose binding always adds the post-processor's (one BOS per text for Llama 2: its tokens per pass are
    higher by the text count).

    {table}
    Tokens per pass (the same corpus) and the library's tokenizers against our ids on the {conformance.Count} conformance texts
    (ours equals both references there, token for token); {conformance.Count(RustReferenceTokenizer.HasLoneSurrogate)} of those texts hold lone surrogates, which the library never
    encodes as the references do (they read them as U+FFFD):

    {counts}
    {(notes.Count == 0 ? "Ours and transformers.js: identical tokens per pass for every tokenizer." : "DIFFERENT tokens per pass: " + string.Join("; ", notes))}

    Run: {started:yyyy-MM-dd HH:mm} UTC. Machine: {machine}.
    Reproduce: `dotnet run -c Release --project bench/TokenizerBench` (options `--seconds`, `--megabytes`, `--rounds`).
    """;
var resultsPath = Path.Combine(repoRoot, "bench", "results", "tokenizer.md");
Directory.CreateDirectory(Path.GetDirectoryName(resultsPath)!);
File.WriteAllText(resultsPath, report.Replace("\r\n", "\n"));
Console.WriteLine();
Console.WriteLine(table);
Console.WriteLine(counts);
Console.WriteLine($"written to {resultsPath}");

/// <summary>Best of <paramref name="rounds"/> timed rounds (the machine may be shared: the best round is the one
/// least disturbed), after a warm-up pass; <paramref name="encode"/> returns the token count of one text.</summary>
static (double TokensPerSecond, long TokensPerPass) Measure(Func<string, int> encode, IReadOnlyList<string> corpus, double seconds, int rounds)
{
    long perPass = 0;
    foreach (var text in corpus) perPass += encode(text); // warm-up pass, also the token count per pass
    var best = 0.0;
    for (var round = 0; round < rounds; round++)
    {
        long tokens = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            foreach (var text in corpus) tokens += encode(text);
        } while (clock.Elapsed.TotalSeconds < seconds / rounds);
        best = Math.Max(best, tokens / clock.Elapsed.TotalSeconds);
    }
    return (best, perPass);
}

/// <summary>The conformance corpus repeated up to the target size; each copy varies (a copy number, shuffled
/// order) so that the corpus is not one text's cache hits. Lone surrogates become U+FFFD (Rust strings cannot hold them).</summary>
static List<string> BuildCorpus(string repoRoot, int targetBytes)
{
    var baseTexts = TokenizerCorpus.All(repoRoot).Where(t => t.Length > 0).Select(RustReferenceTokenizer.WellFormed).ToList();
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
