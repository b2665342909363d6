using System.Text.Json.Nodes;

namespace ChatServices.ModelBuilder.Folder;

/// <summary>
/// The Hugging Face tokenizer files of a model folder: what is copied, the vocabulary size a tokenizer implies, and the
/// ids of its special tokens.
/// </summary>
public sealed class TokenizerFiles
{
    /// <summary>Copied into the model folder when present beside the checkpoint or the given tokenizer.</summary>
    public static readonly string[] FileNames =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"];

    private readonly Dictionary<string, int> _ids;

    private TokenizerFiles(string directory, Dictionary<string, int> ids, int vocabSize, JsonObject? tokenizerConfig)
    {
        Directory = directory;
        _ids = ids;
        VocabSize = vocabSize;
        TokenizerConfig = tokenizerConfig;
    }

    public string Directory { get; }

    /// <summary>One more than the largest token id (model vocabulary and added tokens).</summary>
    public int VocabSize { get; }

    public JsonObject? TokenizerConfig { get; }

    /// <summary>Reads <paramref name="path"/>: a tokenizer.json file or a folder holding one.</summary>
    public static TokenizerFiles Load(string path)
    {
        var file = System.IO.Directory.Exists(path) ? Path.Combine(path, "tokenizer.json") : path;
        if (!File.Exists(file)) throw new ModelBuilderException($"tokenizer.json not found at {path}.");
        var directory = Path.GetDirectoryName(Path.GetFullPath(file))!;
        var json = JsonNode.Parse(File.ReadAllText(file))?.AsObject()
            ?? throw new ModelBuilderException($"{file} is empty.");

        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        switch (json["model"]?["vocab"])
        {
            case JsonObject vocab: // BPE, WordPiece, WordLevel: token → id
                foreach (var (token, id) in vocab) ids[token] = (int)id!;
                break;
            case JsonArray pieces: // Unigram: [token, score] in id order
                for (var i = 0; i < pieces.Count; i++) ids[(string)pieces[i]![0]!] = i;
                break;
            default:
                throw new ModelBuilderException($"{file} has no model.vocab.");
        }
        if (json["added_tokens"] is JsonArray added)
            foreach (var token in added)
                ids[(string)token!["content"]!] = (int)token["id"]!;

        var configPath = Path.Combine(directory, "tokenizer_config.json");
        var config = File.Exists(configPath) ? JsonNode.Parse(File.ReadAllText(configPath))?.AsObject() : null;
        return new TokenizerFiles(directory, ids, ids.Values.Max() + 1, config);
    }

    /// <summary>The id of a special token named in tokenizer_config.json (<c>bos_token</c>, <c>eos_token</c>, <c>pad_token</c>).</summary>
    public int? SpecialTokenId(string key)
    {
        var node = TokenizerConfig?[key];
        var text = node switch
        {
            JsonObject o => (string?)o["content"],
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => null,
        };
        return text is not null && _ids.TryGetValue(text, out var id) ? id : null;
    }

    public void CopyTo(string outputDirectory)
    {
        foreach (var name in FileNames)
        {
            var source = Path.Combine(Directory, name);
            if (File.Exists(source)) File.Copy(source, Path.Combine(outputDirectory, name), overwrite: true);
        }
    }
}
