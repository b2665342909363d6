using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Folder;
using Onnx;

namespace ChatServices.ModelBuilder.Tests;

/// <summary>
/// The plain-operator graph (Hugging Face Optimum's convention: position_ids input, present = past ‖ new) computes
/// the same logits as the reference, with no contrib operator in it.
/// </summary>
public sealed class StandardAttentionEquivalenceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly BuildOptions Standard = new() { Attention = AttentionKind.Standard };

    public static TheoryData<string> Variants => ["llama", "qwen2 tied", "mistral window 5", "multi-query", "llama3 rope"];

    private static RandomModelSpec Spec(string variant) => variant switch
    {
        "llama" => new RandomModelSpec { Seed = 61 },
        "qwen2 tied" => new RandomModelSpec { Architecture = DecoderArchitecture.Qwen2, TieWordEmbeddings = true, Seed = 62 },
        "mistral window 5" => new RandomModelSpec { Architecture = DecoderArchitecture.Mistral, SlidingWindow = 5, Seed = 63 },
        "multi-query" => new RandomModelSpec { KvHeads = 1, Seed = 64 },
        "llama3 rope" => new RandomModelSpec { Seed = 65, RopeScaling = new RopeScaling("llama3", 8, OriginalMaxPositionEmbeddings: 32) },
        _ => throw new ArgumentException(variant),
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Prefill_and_decode_steps_match_the_reference(string variant) =>
        output.WriteLine($"worst relative error {GroupQueryAttentionEquivalenceTests.AssertMatchesReference(Spec(variant), shareBuffer: false, Standard):E2}");

    [Fact]
    public void Graph_uses_only_standard_onnx_operators_and_the_optimum_io_names()
    {
        using var folder = new TempFolder();
        ModelFolderBuilder.FromRandom(new RandomModelSpec(), folder.Path, Standard);
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(folder.ModelPath));
        Assert.All(model.Graph.Node, n => Assert.Equal("", n.Domain));
        Assert.Equal(["input_ids", "attention_mask", "position_ids", "past_key_values.0.key", "past_key_values.0.value",
            "past_key_values.1.key", "past_key_values.1.value"], model.Graph.Input.Select(i => i.Name));
        Assert.Equal(["logits", "present.0.key", "present.0.value", "present.1.key", "present.1.value"], model.Graph.Output.Select(o => o.Name));
    }

    [Fact]
    public void Float16_standard_graph_tracks_the_reference() =>
        output.WriteLine($"worst relative error {GroupQueryAttentionEquivalenceTests.AssertMatchesReference(new RandomModelSpec { Seed = 66 }, shareBuffer: false,
            Standard with { Precision = Precision.Float16 }, tolerance: 5e-3):E2}");

    [Fact]
    public void Int4_with_standard_operators_is_refused()
    {
        using var folder = new TempFolder();
        var e = Assert.Throws<ModelBuilderException>(() => ModelFolderBuilder.FromRandom(new RandomModelSpec(), folder.Path,
            Standard with { Int4 = new Quantization.Int4Options() }));
        Assert.Contains("MatMulNBits", e.Message);
    }
}
