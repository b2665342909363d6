using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>What the reference implementation (npm @huggingface/transformers, run by reference-tokenize.mjs) returns for one text.</summary>
public sealed record ReferenceResult(
    [property: JsonPropertyName("ids")] int[] Ids,
    [property: JsonPropertyName("plain")] int[] Plain,
    [property: JsonPropertyName("decoded")] string Decoded,
    [property: JsonPropertyName("decodedSkip")] string DecodedSkip);

/// <summary>The reference's timed encoding rounds over a corpus (see reference-tokenize.mjs, mode bench).</summary>
public sealed record ReferenceBench(
    [property: JsonPropertyName("tokensPerPass")] long TokensPerPass,
    [property: JsonPropertyName("rounds")] BenchRound[] Rounds);

public sealed record BenchRound(
    [property: JsonPropertyName("tokens")] long Tokens,
    [property: JsonPropertyName("seconds")] double Seconds)
{
    public double TokensPerSecond => Tokens / Seconds;
}

/// <summary>Runs the reference tokenizer in one node process for a whole batch of texts.</summary>
public static class ReferenceTokenizer
{
    public static string Script(string repoRoot) =>
        Path.Combine(repoRoot, "tests", "DialogueService.Tests", "Tokenization", "reference-tokenize.mjs");

    public static async Task<ReferenceResult[]> EncodeAsync(string repoRoot, string name, IReadOnlyList<string> texts)
    {
        var output = await RunAsync(repoRoot, name, texts, ["encode"], TimeSpan.FromMinutes(2));
        return JsonSerializer.Deserialize<ReferenceResult[]>(output)!;
    }

    public static async Task<ReferenceBench> BenchAsync(string repoRoot, string name, IReadOnlyList<string> texts, double seconds, int rounds)
    {
        var output = await RunAsync(repoRoot, name, texts,
            ["bench", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), rounds.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            TimeSpan.FromSeconds(seconds + 120));
        return JsonSerializer.Deserialize<ReferenceBench>(output)!;
    }

    private static async Task<string> RunAsync(string repoRoot, string name, IReadOnlyList<string> texts, string[] args, TimeSpan timeout)
    {
        var (tokenizer, config) = TokenizerFiles.Get(repoRoot, name);
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = repoRoot,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var a in (string[])[Script(repoRoot), tokenizer, config, .. args]) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(ToJsonArray(texts));
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"reference tokenizer ({name}) did not finish within {timeout}.");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"reference tokenizer ({name}) failed with exit code {process.ExitCode}: {await stderr}");
        return await stdout;
    }

    /// <summary>
    /// A JSON array of the texts with every non-ASCII UTF-16 unit escaped, so that lone surrogates reach JavaScript
    /// as they are (a UTF-8 serializer would have to reject or replace them).
    /// </summary>
    public static string ToJsonArray(IReadOnlyList<string> texts)
    {
        var sb = new StringBuilder();
        sb.Append('[');
        for (var i = 0; i < texts.Count; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append('"');
            foreach (var c in texts[i])
            {
                if (c is '"' or '\\') sb.Append('\\').Append(c);
                else if (c is >= ' ' and < (char)0x7F) sb.Append(c);
                else sb.Append("\\u").Append(((int)c).ToString("x4"));
            }
            sb.Append('"');
        }
        return sb.Append(']').ToString();
    }
}
