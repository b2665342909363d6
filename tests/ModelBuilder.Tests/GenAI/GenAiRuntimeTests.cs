using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Tests.Reference;
using Microsoft.ML.OnnxRuntimeGenAI;

namespace ChatServices.ModelBuilder.Tests.GenAI;

/// <summary>
/// ONNX Runtime GenAI — an independent runtime with its own KV-cache management (shared past/present buffer) — loads
/// the folders the builder writes, genai_config.json as written, and its greedy generation yields the reference's tokens.
/// </summary>
[Collection(GenAiCollection.Name)]
public sealed class GenAiRuntimeTests
{
    [Theory]
    [InlineData(DecoderArchitecture.Llama, false, AttentionKind.GroupQuery)]
    [InlineData(DecoderArchitecture.Mistral, false, AttentionKind.GroupQuery)]
    [InlineData(DecoderArchitecture.Qwen2, true, AttentionKind.GroupQuery)]
    [InlineData(DecoderArchitecture.Llama, false, AttentionKind.Standard)]
    [InlineData(DecoderArchitecture.Llama, false, AttentionKind.GroupQuery, true)]
    public void Greedy_generation_yields_the_reference_tokens(DecoderArchitecture architecture, bool tied, AttentionKind attention, bool lastTokenLogits = false)
    {
        using var folder = new TempFolder();
        var spec = new RandomModelSpec { Architecture = architecture, TieWordEmbeddings = tied, Seed = 40 + (int)architecture };
        var (result, makeReference) = TestModels.BuildRandom(spec, folder.Path, new BuildOptions { Attention = attention, LastTokenLogitsOnly = lastTokenLogits });
        var prompt = TestModels.Tokens(7, result.Config.VocabSize, 3).Select(t => (int)t).ToArray();

        var generated = GenerateWithGenAi(folder.Path, prompt, newTokens: 16);
        var expected = ReferenceGreedy(makeReference(), prompt, 16, eos: 2);

        Assert.Equal(expected, generated);
        Assert.True(generated.Length > prompt.Length + 1, "generation produced tokens");
    }

    [Theory]
    [InlineData(Precision.Float16, false)]
    [InlineData(Precision.Float16, true)]
    [InlineData(Precision.Float32, true)]
    [InlineData(Precision.Float32, false)]
    public void Float16_int4_and_external_data_folders_generate_what_onnx_runtime_computes(Precision precision, bool int4)
    {
        // The same graph driven by GenAI and by ONNX Runtime directly must agree token for token (the reduced precision
        // builds are compared with their own graph, not with the double-precision reference).
        using var folder = new TempFolder();
        var options = new BuildOptions
        {
            Precision = precision,
            Int4 = int4 ? new Quantization.Int4Options() : null,
            ExternalData = precision == Precision.Float32 && !int4 ? ExternalDataMode.Always : ExternalDataMode.Auto,
        };
        var result = ModelFolderBuilder.FromRandom(new RandomModelSpec { Seed = 45 }, folder.Path, options);
        var prompt = TestModels.Tokens(5, result.Config.VocabSize, 8).Select(t => (int)t).ToArray();

        var generated = GenerateWithGenAi(folder.Path, prompt, newTokens: 12);

        using var runner = new Runtime.OnnxDecoderRunner(folder.ModelPath, 1, shareBuffer: true, maxLength: 128);
        var tokens = prompt.ToList();
        var logits = runner.Step([prompt.Select(t => (long)t).ToArray()])[0][^1];
        for (var i = 0; i < 12; i++)
        {
            var next = TestModels.ArgMax(logits);
            tokens.Add(next);
            if (next == 2) break;
            logits = runner.Step([[next]])[0][0];
        }
        Assert.Equal(tokens, generated);
    }

    [Fact]
    public void Folder_with_a_real_tokenizer_loads_tokenizes_and_generates_the_reference_tokens()
    {
        using var folder = new TempFolder();
        var spec = new RandomModelSpec { Layers = 1, Seed = 50 };
        var result = ModelFolderBuilder.FromRandom(spec, folder.Path, new BuildOptions(), TestModels.Llama2TokenizerDirectory);
        Assert.Equal(32000, result.Config.VocabSize);
        Assert.True(File.Exists(Path.Combine(folder.Path, "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(folder.Path, "tokenizer_config.json")));

        using var model = new Model(folder.Path);
        using var tokenizer = new Tokenizer(model);
        using var sequences = tokenizer.Encode("The quick brown fox");
        var prompt = sequences[0].ToArray();
        Assert.True(prompt.Length >= 4, "the Llama 2 tokenizer encoded the prompt");

        var weights = new ModelBuilder.Checkpoints.RandomCheckpoint(result.Config, spec.Seed);
        var reference = new ReferenceDecoder(TestModels.ReadConfig(folder.Path), weights.ReadFloat32);
        var expected = ReferenceGreedy(reference, prompt, 6, eos: 2);
        Assert.Equal(expected, GenerateWithGenAi(folder.Path, prompt, newTokens: 6, model));
        Assert.False(string.IsNullOrEmpty(tokenizer.Decode(expected.AsSpan(prompt.Length))));
    }

    private static int[] GenerateWithGenAi(string folder, int[] prompt, int newTokens, Model? loaded = null)
    {
        var model = loaded ?? new Model(folder);
        try
        {
            using var parameters = new GeneratorParams(model);
            parameters.SetSearchOption("max_length", prompt.Length + newTokens);
            using var generator = new Generator(model, parameters);
            generator.AppendTokens(prompt);
            while (!generator.IsDone()) generator.GenerateNextToken();
            return generator.GetSequence(0).ToArray();
        }
        finally
        {
            if (loaded is null) model.Dispose();
        }
    }

    /// <summary>Greedy decoding on the reference, stopping at EOS as GenAI does.</summary>
    private static int[] ReferenceGreedy(ReferenceDecoder reference, int[] prompt, int newTokens, int eos)
    {
        var tokens = prompt.ToList();
        var logits = reference.Forward(prompt.Select(t => (long)t).ToArray())[^1];
        for (var i = 0; i < newTokens; i++)
        {
            var next = TestModels.ArgMax(logits);
            tokens.Add(next);
            if (next == eos) break;
            logits = reference.Forward([next])[0];
        }
        return [.. tokens];
    }
}

/// <summary>GenAI's native runtime is process-global; its tests run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GenAiCollection
{
    public const string Name = "ONNX Runtime GenAI";
}
