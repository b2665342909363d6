using System.Globalization;
using System.Text;
using System.Text.Json;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Gguf;
using ChatServices.ModelBuilder.Quantization;

namespace ChatServices.InferenceBench;

/// <summary>
/// Accuracy of quantized builds of the trained embedded default model (models/chat-default) against its float32
/// build: teacher-forced log-probabilities and perplexity on held-out text of its training corpus — the first 5% of
/// the pre-training documents and of the dialogues, which training/train.py holds out for validation. Each variant
/// is rebuilt from the committed float32 folder; llama.cpp's GGUF formats of the same weights are scored too.
/// Needs training/data/tokens.json (training/generate_corpus.py, then training/tokenize.mjs; about a minute).
/// </summary>
public static class TrainedModelAccuracy
{
    private const int Documents = 400;
    private const int Dialogues = 200;

    public static string Run(string repo, Action<string> log, Func<string> loadAverage)
    {
        var tokensPath = Path.Combine(repo, "training", "data", "tokens.json");
        if (!File.Exists(tokensPath))
            throw new InvalidOperationException($"{tokensPath} is missing: run training/generate_corpus.py and training/tokenize.mjs first.");
        var (documents, dialogues) = HeldOut(tokensPath);
        log($"[bench] held out: {documents.Count} documents ({documents.Sum(d => d.Length)} tokens), {dialogues.Count} dialogues ({dialogues.Sum(d => d.Length)} tokens)");

        var source = Path.Combine(repo, "models", "chat-default");
        var root = Path.Combine(repo, ".models", "chat-default-variants");
        var variants = new List<WeightVariant> { new("f32 (rebuilt)", null) };
        variants.AddRange(QuantizationBench.Variants.Where(v => v.Quantization is not null && v.Quantization.AccuracyLevel is 0 or 4 && v.Name != "q8-b128-a0"));

        var reference = ScoreOnnx(source, documents, dialogues);
        var rows = new List<(string Name, string Bytes, AccuracyResult Documents, AccuracyResult Dialogues)>();
        foreach (var v in variants)
        {
            var folder = Path.Combine(root, v.Name.Split(' ')[0]);
            ModelFolderBuilder.FromCheckpoint(source, folder, new BuildOptions { Int4 = v.Quantization, LastTokenLogitsOnly = false });
            var scores = ScoreOnnx(folder, documents, dialogues);
            rows.Add(($"engine {v.Name}", $"{QuantizationBench.FolderBytes(folder) / 1e6:F1} MB",
                AccuracyResult.Compare(reference.Documents, scores.Documents), AccuracyResult.Compare(reference.Dialogues, scores.Dialogues)));
            log($"[bench] {v.Name}: documents {rows[^1].Documents}");
        }
        foreach (var type in new[] { GgufType.F16, GgufType.Q8_0, GgufType.Q4_0 })
        {
            var path = Path.Combine(root, $"chat-default-{type}.gguf");
            var (config, _, tokenizer) = ModelFolderBuilder.CheckpointConfig(source);
            using (var weights = ModelFolderBuilder.OpenCheckpoint(source, config)) GgufWriter.Write(config, weights, tokenizer!, path, type);
            using var peer = new LlamaCppPeer(path, QuantizationBench.Threads, 1, 512);
            var documentScores = Concat(documents.Select(peer.Score));
            var dialogueScores = Concat(dialogues.Select(peer.Score));
            rows.Add(($"llama.cpp {type}", $"{new FileInfo(path).Length / 1e6:F1} MB",
                AccuracyResult.Compare(reference.Documents, documentScores), AccuracyResult.Compare(reference.Dialogues, dialogueScores)));
            log($"[bench] llama.cpp {type}: documents {rows[^1].Documents}");
        }

        var md = new StringBuilder();
        md.AppendLine("# Quantized builds of the trained default model against float32");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Model: `models/chat-default` (4.9M parameters, of which 4.1M the tied embedding; hidden 128, 4 layers), each build made from the committed float32 folder by ModelBuilder (`--checkpoint models/chat-default`). Text: held-out data of its training corpus (training/train.py's validation split): the first {documents.Count} pre-training documents ({documents.Sum(d => d.Length):N0} tokens) and the first {dialogues.Count} dialogues ({dialogues.Sum(d => d.Length):N0} tokens, every token scored, the unpredictable user turns included), each scored teacher-forced in one pass.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Float32 perplexity: documents {rows[0].Documents.ReferencePerplexity:F3}, dialogues {rows[0].Dialogues.ReferencePerplexity:F3}. |Δ| is per scored token against the float32 build; top-1 = tokens where the arg-max agrees. Load average at the end: {loadAverage()}.");
        md.AppendLine();
        md.AppendLine("| build | model file | documents: perplexity | mean \\|Δ logprob\\| | max \\|Δ logprob\\| | top-1 | dialogues: perplexity | mean \\|Δ logprob\\| | max \\|Δ logprob\\| | top-1 |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (name, bytes, d, g) in rows)
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {name} | {bytes} | {d.Perplexity:F3} | {d.MeanAbsDelta:F4} | {d.MaxAbsDelta:F3} | {d.Top1Agreement:P1} | {g.Perplexity:F3} | {g.MeanAbsDelta:F4} | {g.MaxAbsDelta:F3} | {g.Top1Agreement:P1} |");
        return md.ToString();
    }

    private static (TokenScores Documents, TokenScores Dialogues) ScoreOnnx(string folder, List<int[]> documents, List<int[]> dialogues)
    {
        using var scorer = new TeacherForcedScorer(folder, QuantizationBench.Threads);
        return (Concat(documents.Select(scorer.Score)), Concat(dialogues.Select(scorer.Score)));
    }

    private static TokenScores Concat(IEnumerable<TokenScores> parts)
    {
        var list = parts.ToList();
        return new TokenScores([.. list.SelectMany(p => p.LogProbs)], [.. list.SelectMany(p => p.ArgMax)]);
    }

    /// <summary>training/train.py's validation split: the first 5% of documents and of dialogues, in file order.</summary>
    private static (List<int[]> Documents, List<int[]> Dialogues) HeldOut(string path)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        var pretrain = json.RootElement.GetProperty("pretrain");
        var dialogues = json.RootElement.GetProperty("dialogues");
        var documents = pretrain.EnumerateArray().Take(Math.Min(Documents, pretrain.GetArrayLength() / 20))
            .Select(d => d.EnumerateArray().Select(t => t.GetInt32()).ToArray()).ToList();
        var chats = dialogues.EnumerateArray().Take(Math.Min(Dialogues, dialogues.GetArrayLength() / 20))
            .Select(d => d.GetProperty("ids").EnumerateArray().Select(t => t.GetInt32()).ToArray()).ToList();
        return (documents, chats);
    }
}
