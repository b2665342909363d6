using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChatServices.DialogueService.Tests;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Constraints;
using ChatServices.InferenceService.Engine.Sampling;
using Json.Schema;

namespace ChatServices.InferenceService.Tests.Constraints;

/// <summary>The embedded default model (which has never seen JSON) started once for the class.</summary>
public sealed class EmbeddedModelEngine : IDisposable
{
    public InferenceEngine Engine { get; } = Start();

    public static InferenceEngine Start(Action<InferenceOptions>? configure = null)
    {
        var options = new InferenceOptions
        {
            ModelPath = Path.Combine(TestPaths.RepoRoot, "models", "chat-default"),
            MaxSequenceTokens = 512,
            KvCacheBudgetMiB = 96,
            MaxBatchSize = 32,
            IntraOpThreads = 2,
        };
        configure?.Invoke(options);
        return InferenceEngine.Start(options);
    }

    public void Dispose() => Engine.Dispose();
}

/// <summary>
/// Constrained decoding in the engine with the embedded default model: outputs belong to the language by
/// construction, with sampling, greedy, n > 1, beam search, preemption, and beside unconstrained requests.
/// </summary>
public class ConstrainedGenerationTests(EmbeddedModelEngine fixture) : IClassFixture<EmbeddedModelEngine>
{
    // "<s> Reply with a short answer:" in the model's tokens is not needed: any prompt will do for a model that
    // knows nothing of JSON; these are ordinary word-piece ids.
    private static readonly int[] Prompt = [1, 450, 1234, 338, 263, 1243, 29901, 13];

    private InferenceEngine Engine => fixture.Engine;

    private string Text(int[] tokens) =>
        Encoding.UTF8.GetString([.. tokens.Where(t => !Engine.Model.EosTokenIds.Contains(t)).SelectMany(t => Engine.Constraints.Vocabulary.BytesOf(t).ToArray())]);

    [Fact]
    public async Task A_strict_json_schema_gives_100_of_100_seeded_samples_that_validate()
    {
        var schema = JsonSchema.FromText(TestSchemas.Strict);
        var requests = Enumerable.Range(0, 10).Select(i => Engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = new SamplingParameters { Temperature = 1f, Seed = (ulong)(1000 + i) },
            MaxNewTokens = 400,
            N = 10,
            Constraint = new JsonSchemaConstraint(TestSchemas.Strict),
        }));
        var samples = (await Task.WhenAll(requests)).SelectMany(r => r.Sequences).ToList();

        Assert.Equal(100, samples.Count);
        var cut = samples.Where(s => s.FinishReason != FinishReason.Stop).Select(s => Text(s.TokenIds)).ToList();
        Assert.True(cut.Count == 0, $"{cut.Count} of 100 samples were cut by max_new_tokens: {string.Join("\n", cut)}");
        foreach (var s in samples)
        {
            var text = Text(s.TokenIds);
            Assert.Equal(Engine.Model.EosTokenIds[0], s.TokenIds[^1]);
            var result = schema.Evaluate(JsonDocument.Parse(text).RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            Assert.True(result.IsValid, text);
        }
        Assert.True(samples.Select(s => Text(s.TokenIds)).Distinct().Count() > 90, "seeded samples differ");
    }

    [Fact]
    public async Task Greedy_decoding_under_a_schema_is_deterministic_and_valid()
    {
        var request = new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = SamplingParameters.Greedy,
            MaxNewTokens = 400,
            Constraint = new JsonSchemaConstraint(TestSchemas.Strict),
            Logprobs = true,
        };
        var first = await Engine.GenerateAsync(request);
        var second = await Engine.GenerateAsync(request);
        Assert.Equal(first.Sequences[0].TokenIds, second.Sequences[0].TokenIds);
        Assert.Equal(FinishReason.Stop, first.Sequences[0].FinishReason);
        Assert.True(JsonSchema.FromText(TestSchemas.Strict).Evaluate(JsonDocument.Parse(Text(first.Sequences[0].TokenIds)).RootElement).IsValid);
        // Log-probabilities are those of the masked distribution: the forced closing tokens are certain.
        Assert.True(first.Sequences[0].Score > double.NegativeInfinity);
    }

    [Fact]
    public async Task Top_logprobs_under_a_constraint_list_only_tokens_it_allows()
    {
        // "a" or "b": a handful of tokens are allowed at the first step, fewer than the 20 asked for.
        var events = Engine.Submit(new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = SamplingParameters.Greedy,
            MaxNewTokens = 4,
            TopLogprobs = 20,
            Constraint = new RegexConstraint("a|b"),
        });
        var first = (await events.ReadAllAsync().OfType<TokensGenerated>().FirstAsync()).Tokens[0];
        var top = first.TopLogprobs!;
        Assert.InRange(top.Length, 2, 19);
        Assert.All(top, t =>
        {
            Assert.True(float.IsFinite(t.Logprob), $"token {t.TokenId} listed with logprob {t.Logprob}");
            Assert.Contains(Encoding.UTF8.GetString(Engine.Constraints.Vocabulary.BytesOf(t.TokenId)), new[] { "a", "b" });
        });
        Assert.Equal(top[0].TokenId, first.TokenId);
    }

    [Fact]
    public async Task Json_object_samples_parse_as_objects_closed_in_time_by_the_token_budget()
    {
        // Any object: strings are unbounded and this model writes prose in them. Near the end of max_new_tokens the
        // engine masks the tokens after which the shortest completion would no longer fit, so the output closes.
        var done = await Engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = new SamplingParameters { Temperature = 1f, Seed = 3 },
            MaxNewTokens = 100,
            N = 8,
            Constraint = new InferenceService.Engine.Constraints.JsonObjectConstraint(),
        });
        Assert.Equal(8, done.Sequences.Length);
        foreach (var s in done.Sequences)
        {
            var text = Text(s.TokenIds);
            Assert.True(s.FinishReason == FinishReason.Stop, $"cut by max_new_tokens: {text}");
            Assert.True(s.TokenIds.Length <= 100);
            Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(text).RootElement.ValueKind);
        }
    }

    [Fact]
    public async Task Regex_samples_match_in_full()
    {
        const string pattern = @"[A-Z][a-z]{2,8} (is|was) [0-9]{1,3}( years)?\.";
        var done = await Engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = new SamplingParameters { Temperature = 1f, Seed = 11 },
            MaxNewTokens = 64,
            N = 12,
            Constraint = new RegexConstraint(pattern),
        });
        Assert.Equal(12, done.Sequences.Length);
        foreach (var s in done.Sequences)
        {
            Assert.Equal(FinishReason.Stop, s.FinishReason);
            Assert.Matches(new Regex($"^(?:{pattern})$"), Text(s.TokenIds));
        }
    }

    [Fact]
    public async Task Beam_search_under_a_tool_call_grammar_keeps_every_beam_in_the_language()
    {
        var schema = JsonSchema.FromText(TestSchemas.ToolCallSchema);
        var done = await Engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = Prompt,
            MaxNewTokens = 120,
            BeamSearch = new BeamSearchParameters(4),
            Constraint = new GrammarConstraint(TestSchemas.ToolCallGbnf, new Dictionary<string, string> { ["call"] = TestSchemas.ToolCallSchema }),
        });
        Assert.InRange(done.Sequences.Length, 1, 4); // beams narrow where the grammar leaves fewer continuations
        foreach (var s in done.Sequences)
        {
            var text = Text(s.TokenIds);
            Assert.Equal(FinishReason.Stop, s.FinishReason);
            Assert.StartsWith("<tool_call>\n", text);
            Assert.EndsWith("\n</tool_call>", text);
            Assert.True(schema.Evaluate(JsonDocument.Parse(text["<tool_call>\n".Length..^"\n</tool_call>".Length]).RootElement).IsValid, text);
        }
    }

    [Fact]
    public async Task Constrained_and_unconstrained_requests_batch_together_without_changing_each_other()
    {
        var plain = new GenerationRequest { PromptTokenIds = Prompt, Sampling = new SamplingParameters { Temperature = 1f, Seed = 42 }, MaxNewTokens = 40, IgnoreEos = true };
        var constrained = plain with { IgnoreEos = false, MaxNewTokens = 200, Constraint = new RegexConstraint("(yes|no), [a-z ]{1,30}\\.") };
        var plainAlone = await Engine.GenerateAsync(plain);
        var constrainedAlone = await Engine.GenerateAsync(constrained);
        var both = await Task.WhenAll(Engine.GenerateAsync(plain), Engine.GenerateAsync(constrained));
        Assert.Equal(plainAlone.Sequences[0].TokenIds, both[0].Sequences[0].TokenIds);
        Assert.Equal(constrainedAlone.Sequences[0].TokenIds, both[1].Sequences[0].TokenIds);
        Assert.Matches("^(yes|no), [a-z ]{1,30}\\.$", Text(both[1].Sequences[0].TokenIds));
        Assert.DoesNotMatch("^(yes|no), ", Text(both[0].Sequences[0].TokenIds));
    }

    [Fact]
    public async Task A_cancelled_constrained_request_ends_and_leaves_the_engine_serving()
    {
        using var cancel = new CancellationTokenSource();
        var reader = Engine.Submit(new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = new SamplingParameters { Temperature = 1f, Seed = 9 },
            MaxNewTokens = 400,
            N = 4,
            Constraint = new InferenceService.Engine.Constraints.JsonObjectConstraint(),
        }, cancel.Token);
        Assert.IsType<TokensGenerated>(await reader.ReadAsync());
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { await foreach (var _ in reader.ReadAllAsync()) { } });
        var after = await Engine.GenerateAsync(new GenerationRequest { PromptTokenIds = Prompt, Sampling = SamplingParameters.Greedy, MaxNewTokens = 60, Constraint = new RegexConstraint("[a-z]{1,8}") });
        Assert.Equal(FinishReason.Stop, after.Sequences[0].FinishReason);
        Assert.Matches("^[a-z]{1,8}$", Text(after.Sequences[0].TokenIds));
    }

    [Fact]
    public async Task A_max_new_tokens_cut_reports_length()
    {
        var done = await Engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = SamplingParameters.Greedy,
            MaxNewTokens = 5,
            Constraint = new JsonSchemaConstraint(TestSchemas.Strict),
        });
        Assert.Equal(FinishReason.Length, done.Sequences[0].FinishReason);
        Assert.Equal(5, done.Sequences[0].TokenIds.Length);
        var separate = ConstraintCache.Compile(new JsonSchemaConstraint(TestSchemas.Strict), Engine.Constraints.Vocabulary);
        var text = Text(done.Sequences[0].TokenIds);
        Assert.True(ConstraintFixtures.IsPrefix(separate, text) && !ConstraintFixtures.Accepts(separate, text), text);
    }

    [Fact]
    public async Task A_preempted_constrained_request_is_recomputed_and_finishes_unchanged()
    {
        // 1 MiB holds 256 tokens of this model (4 KiB each), counted in pages of 32 tokens per slot: the n=2 request
        // (90 + 12 tokens: 128) prefills a long prompt in chunks while the constrained greedy request runs beside it;
        // when the samples fork, the second sample's copy (128 more) does not fit, so the constrained request is
        // preempted, recomputed later, and its matcher state (kept with its generated tokens) gives the same output.
        using var engine = EmbeddedModelEngine.Start(o =>
        {
            o.MaxSequenceTokens = 256; o.KvCacheBudgetMiB = 1; o.PrefixCaching = false; o.PrefillChunkTokens = 16; o.StepTokenBudget = 17;
        });
        Assert.Equal(256, engine.Status.KvTokenBudget);
        var sampled = new GenerationRequest
        {
            PromptTokenIds = [.. Enumerable.Range(0, 90).Select(i => 300 + i * 7)],
            Sampling = new SamplingParameters { Temperature = 1f, Seed = 5 },
            MaxNewTokens = 12,
            IgnoreEos = true,
            N = 2,
        };
        var later = new GenerationRequest
        {
            PromptTokenIds = Prompt,
            Sampling = SamplingParameters.Greedy,
            MaxNewTokens = 150,
            Constraint = new JsonSchemaConstraint(TestSchemas.ToolCallSchema),
        };
        var alone = await engine.GenerateAsync(later);
        var both = await Task.WhenAll(engine.GenerateAsync(sampled), engine.GenerateAsync(later));
        Assert.True(engine.Status.Preemptions >= 1, $"the constrained request was preempted: {engine.Status}");
        Assert.Equal(alone.Sequences[0].TokenIds, both[1].Sequences[0].TokenIds);
        Assert.Equal(FinishReason.Stop, both[1].Sequences[0].FinishReason);
    }

    [Theory]
    [InlineData("""{"type": "object", "patternProperties": {"^a": {}}}""", "constraint.json_schema: keyword 'patternProperties' is not supported.")]
    [InlineData("""{"type": "string", "minLength": """, "constraint.json_schema: not valid JSON: ")]
    public async Task An_unsupported_or_malformed_schema_is_refused_before_queueing(string schema, string message)
    {
        var e = Assert.Throws<InvalidRequestException>(() => Engine.Submit(new GenerationRequest { PromptTokenIds = Prompt, Constraint = new JsonSchemaConstraint(schema) }));
        Assert.StartsWith(message, e.Message);
        Assert.Equal(0, Engine.InFlight);
        // Refused requests take no place in the waiting queue (256 by default): after 300 refusals one is still accepted.
        for (var i = 0; i < 300; i++)
            Assert.Throws<InvalidRequestException>(() => Engine.Submit(new GenerationRequest { PromptTokenIds = Prompt, Constraint = new JsonSchemaConstraint(schema) }));
        Assert.Single((await Engine.GenerateAsync(new GenerationRequest { PromptTokenIds = Prompt, MaxNewTokens = 1 })).Sequences);
    }

    [Fact]
    public void A_constraint_needs_an_end_token()
    {
        var e = Assert.Throws<InvalidRequestException>(() => Engine.Submit(new GenerationRequest { PromptTokenIds = Prompt, IgnoreEos = true, Constraint = new RegexConstraint("a+") }));
        Assert.Equal("constraint", e.Field);
    }
}
