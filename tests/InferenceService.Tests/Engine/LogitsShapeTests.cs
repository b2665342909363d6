using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;
using Microsoft.ML.OnnxRuntimeGenAI;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>
/// Graphs whose logits are each row's last token ([batch, 1, vocab], ModelBuilder's default) and graphs with logits for
/// every position ([batch, sequence, vocab]) are both detected and served, in both conventions, and give the same
/// tokens and log-probabilities; ONNX Runtime GenAI agrees on the all-position folder too.
/// </summary>
public sealed class LogitsShapeTests(TestModel lastToken, AllPositionLogitsTestModel allPositions, OptimumTestModel optimumLastToken,
    OptimumAllPositionLogitsTestModel optimumAllPositions)
    : IClassFixture<TestModel>, IClassFixture<AllPositionLogitsTestModel>, IClassFixture<OptimumTestModel>, IClassFixture<OptimumAllPositionLogitsTestModel>
{
    // A short prompt, one prefilled in two chunks (32 tokens each), and one seeded sampled request with logprobs.
    private static GenerationRequest[] Requests() =>
    [
        new() { PromptTokenIds = TestModel.Prompt(5, 501), Sampling = SamplingParameters.Greedy, MaxNewTokens = 12, IgnoreEos = true, Logprobs = true },
        new() { PromptTokenIds = TestModel.Prompt(50, 502), Sampling = SamplingParameters.Greedy, MaxNewTokens = 10, IgnoreEos = true, TopLogprobs = 3 },
        new() { PromptTokenIds = TestModel.Prompt(9, 503), Sampling = new SamplingParameters { Temperature = 0.9f, TopK = 40, Seed = 5 }, MaxNewTokens = 10, IgnoreEos = true, Logprobs = true },
    ];

    [Fact]
    public async Task Last_token_and_all_position_graphs_give_the_same_tokens_and_logprobs_in_both_conventions()
    {
        var results = new List<(bool LastToken, List<GeneratedToken> Tokens)>();
        foreach (var model in new TestModel[] { lastToken, allPositions, optimumLastToken, optimumAllPositions })
        {
            using var engine = model.Start();
            results.Add((engine.Model.LastTokenLogits, await Generate(engine)));
        }

        Assert.Equal([true, false, true, false], results.Select(r => r.LastToken));
        var reference = results[1].Tokens;
        Assert.True(reference.Count == 32 && reference.TrueForAll(t => t.Logprob < 0));
        foreach (var (_, tokens) in results)
        {
            Assert.Equal(reference.Select(t => t.TokenId), tokens.Select(t => t.TokenId));
            for (var i = 0; i < reference.Count; i++)
            {
                Assert.Equal(reference[i].Logprob, tokens[i].Logprob, 1e-4f);
                Assert.Equal(reference[i].TopLogprobs?.Select(t => t.TokenId), tokens[i].TopLogprobs?.Select(t => t.TokenId));
            }
        }
    }

    [Fact]
    public async Task Onnx_runtime_genai_greedy_search_on_the_all_position_folder_gives_the_engines_tokens()
    {
        var prompt = TestModel.Prompt(6, 504);
        using var engine = allPositions.Start();
        Assert.False(engine.Model.LastTokenLogits);
        var ours = (await engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = prompt, Sampling = SamplingParameters.Greedy, MaxNewTokens = 16, IgnoreEos = true,
        })).Sequences[0].TokenIds;

        using var genAi = new Model(allPositions.Path);
        using var parameters = new GeneratorParams(genAi);
        parameters.SetSearchOption("max_length", prompt.Length + 16);
        using var generator = new Generator(genAi, parameters);
        generator.AppendTokens(prompt);
        while (!generator.IsDone()) generator.GenerateNextToken();
        var expected = generator.GetSequence(0).ToArray()[prompt.Length..];
        Assert.True(expected.Length > 1);
        Assert.Equal(expected, ours[..expected.Length]);
    }

    /// <summary>Runs the requests one after the other; returns every generated token in order.</summary>
    private static async Task<List<GeneratedToken>> Generate(InferenceEngine engine)
    {
        var tokens = new List<GeneratedToken>();
        foreach (var request in Requests())
            await foreach (var e in engine.Submit(request).ReadAllAsync())
                if (e is TokensGenerated step) tokens.AddRange(step.Tokens);
        return tokens;
    }
}
