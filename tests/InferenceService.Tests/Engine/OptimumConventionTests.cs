using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>
/// A model folder in the Optimum convention (position_ids, plain attention) is detected and served: batched, with
/// chunked prefill and prefix caching, it gives the tokens the GroupQueryAttention build of the same weights gives.
/// </summary>
public sealed class OptimumConventionTests(OptimumTestModel optimum, TestModel groupQuery) : IClassFixture<OptimumTestModel>, IClassFixture<TestModel>
{
    private static GenerationRequest Greedy(int[] prompt, int maxNewTokens) => new()
    {
        PromptTokenIds = prompt,
        Sampling = SamplingParameters.Greedy,
        MaxNewTokens = maxNewTokens,
        IgnoreEos = true,
    };

    [Fact]
    public async Task Optimum_model_batched_gives_the_tokens_of_the_group_query_model_alone()
    {
        var requests = new[] { Greedy(TestModel.Prompt(7, 401), 12), Greedy(TestModel.Prompt(45, 402), 10), Greedy(TestModel.Prompt(1, 403), 8) };
        using var reference = groupQuery.Start(o => o.PrefixCaching = false);
        var expected = new List<int[]>();
        foreach (var r in requests) expected.Add((await reference.GenerateAsync(r)).Sequences[0].TokenIds);

        using var engine = optimum.Start();
        Assert.Equal(DecoderConvention.Optimum, engine.Model.Convention);
        var first = engine.GenerateAsync(requests[0]);
        await ContinuousBatchingTests.WaitForTokens(engine, 3);
        var batched = await Task.WhenAll([first, .. requests.Skip(1).Select(r => engine.GenerateAsync(r))]);
        for (var i = 0; i < requests.Length; i++) Assert.Equal(expected[i], batched[i].Sequences[0].TokenIds);

        // The next turn reuses the cached history and still matches.
        int[] turn2 = [.. requests[1].PromptTokenIds, .. batched[1].Sequences[0].TokenIds, .. TestModel.Prompt(5, 404)];
        var warm = await engine.GenerateAsync(Greedy(turn2, 8));
        Assert.True(warm.Usage.CachedPromptTokens > 0);
        Assert.Equal((await reference.GenerateAsync(Greedy(turn2, 8))).Sequences[0].TokenIds, warm.Sequences[0].TokenIds);
    }
}
