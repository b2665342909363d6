using System.Diagnostics;
using System.Numerics;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// A constraint compiled for one vocabulary: the byte automaton of its grammar and, memoized per automaton state,
/// the mask of tokens that keep the output a prefix of the language. Shared by every request with the same
/// constraint (see <see cref="ConstraintCache"/>); each sequence holds its own <see cref="ConstraintMatcher"/>.
/// Not thread-safe: masks and transitions are built on the engine thread.
/// </summary>
public sealed class CompiledConstraint
{
    private readonly MatchState[] _walk;

    public CompiledConstraint(ByteAutomaton automaton, TokenVocabulary vocabulary)
    {
        Automaton = automaton;
        Vocabulary = vocabulary;
        _walk = new MatchState[vocabulary.MaxTokenBytes + 1];
    }

    public ByteAutomaton Automaton { get; }
    public TokenVocabulary Vocabulary { get; }

    /// <summary>Masks computed (each once per automaton state).</summary>
    public long MasksComputed { get; private set; }

    /// <summary>Time spent computing masks, in Stopwatch ticks.</summary>
    public long MaskTicks { get; private set; }

    public ConstraintMatcher NewMatcher() => new(this, Automaton.Start);

    /// <summary>The state after the bytes of <paramref name="tokenId"/> (dead when it leaves the language or stands for no bytes).</summary>
    public MatchState Advance(MatchState state, int tokenId)
    {
        var bytes = Vocabulary.BytesOf(tokenId);
        if (bytes.IsEmpty) return MatchState.Dead;
        foreach (var b in bytes)
        {
            state = Automaton.Next(state, b);
            if (state.IsDead) break;
        }
        return state;
    }

    /// <summary>One bit per token id: set where the token's bytes keep the output a prefix of the language.</summary>
    public ulong[] MaskOf(MatchState state, out bool canExtend)
    {
        if (state.Mask is { } cached)
        {
            canExtend = state.CanExtend;
            return cached;
        }
        var started = Stopwatch.GetTimestamp();
        var mask = new ulong[(Vocabulary.Size + 63) >> 6];
        var maxCost = 0;
        var any = !state.IsDead && Walk(state, mask, out maxCost);
        MaskTicks += Stopwatch.GetTimestamp() - started;
        MasksComputed++;
        if (state.IsDead) { canExtend = false; return mask; } // the shared dead state keeps no vocabulary's mask
        state.Mask = mask;
        state.MaxCostAfter = maxCost;
        state.CanExtend = canExtend = any;
        return mask;
    }

    /// <summary>
    /// Walks the tokens in byte order, keeping the automaton state after each byte of the current token; a token
    /// resumes from the state after the prefix it shares with the one before, and a rejected prefix skips every
    /// token that starts with it. <paramref name="maxCost"/>: the most bytes left to complete after an allowed token.
    /// </summary>
    private bool Walk(MatchState start, ulong[] mask, out int maxCost)
    {
        maxCost = 0;
        var ids = Vocabulary.SortedIds;
        var shared = Vocabulary.SharedPrefix;
        var walk = _walk;
        walk[0] = start;
        var valid = 0; // walk[0..valid] are the states after the current token's first bytes
        var any = false;
        for (var i = 0; i < ids.Length; i++)
        {
            var bytes = Vocabulary.BytesOf(ids[i]);
            var depth = Math.Min(shared[i], valid);
            var state = walk[depth];
            while (depth < bytes.Length)
            {
                state = Automaton.Next(state, bytes[depth]);
                if (state.IsDead) break;
                walk[++depth] = state;
            }
            valid = depth;
            if (depth == bytes.Length)
            {
                mask[ids[i] >> 6] |= 1UL << (ids[i] & 63);
                maxCost = Math.Max(maxCost, Automaton.BytesToComplete(state));
                any = true;
                continue;
            }
            // bytes[0..depth] lead nowhere: skip the tokens that share them.
            while (i + 1 < ids.Length && shared[i + 1] > depth) i++;
        }
        return any;
    }

    /// <summary>For each token the mask allows (in id order): the fewest bytes to complete after it.</summary>
    internal int[] CostsAfter(MatchState state, ulong[] mask)
    {
        var costs = new int[CountAllowed(mask)];
        var k = 0;
        for (var w = 0; w < mask.Length; w++)
            for (var word = mask[w]; word != 0; word &= word - 1)
                costs[k++] = Automaton.BytesToComplete(Advance(state, (w << 6) + BitOperations.TrailingZeroCount(word)));
        return costs;
    }

    /// <summary>Tokens a mask allows (tests, diagnostics).</summary>
    public static int CountAllowed(ulong[] mask)
    {
        var n = 0;
        foreach (var w in mask) n += BitOperations.PopCount(w);
        return n;
    }
}

/// <summary>
/// One sequence's position in a constraint's language. Cheap to fork: the state is an immutable, shared
/// <see cref="MatchState"/>, so n samples and beams each hold their own matcher over the same compiled constraint.
/// </summary>
public sealed class ConstraintMatcher(CompiledConstraint constraint, MatchState state)
{
    public CompiledConstraint Constraint { get; } = constraint;
    public MatchState State { get; private set; } = state;

    /// <summary>Whether the output so far is a complete sentence (an end token may follow).</summary>
    public bool IsComplete => State.Accepting;

    public ConstraintMatcher Fork() => new(Constraint, State);

    /// <summary>Advances by a generated token; false when the token left the language (the matcher is then dead).</summary>
    public bool Accept(int tokenId)
    {
        State = Constraint.Advance(State, tokenId);
        return !State.IsDead;
    }

    /// <summary>
    /// Copies <paramref name="logits"/> into <paramref name="destination"/> with every token the constraint does
    /// not allow here at negative infinity. <paramref name="endTokens"/> (end-of-sequence and stop ids) keep their
    /// logits where the output is complete, and also where nothing else is allowed, so a sequence always has a token.
    /// <paramref name="tokensLeft"/> counts this token: near the end of the budget, tokens after which the shortest
    /// completion (in bytes, each byte being one token at worst) plus the end token would not fit are masked too,
    /// so the output closes in time whenever it can.
    /// </summary>
    public void MaskLogits(ReadOnlySpan<float> logits, Span<float> destination, ReadOnlySpan<int> endTokens, int tokensLeft = int.MaxValue)
    {
        var mask = Constraint.MaskOf(State, out var canExtend);
        logits.CopyTo(destination);
        var n = logits.Length;
        for (var w = 0; w < mask.Length; w++)
        {
            var word = mask[w];
            if (word == ulong.MaxValue) continue;
            var at = w << 6;
            var count = Math.Min(64, n - at);
            if (count <= 0) break;
            if (word == 0) { destination.Slice(at, count).Fill(float.NegativeInfinity); continue; }
            for (var holes = ~word; holes != 0; holes &= holes - 1) // only the disallowed ids of a mostly allowed word
            {
                var bit = BitOperations.TrailingZeroCount(holes);
                if (bit >= count) break;
                destination[at + bit] = float.NegativeInfinity;
            }
        }
        for (var i = mask.Length << 6; i < n; i++) destination[i] = float.NegativeInfinity; // ids past the vocabulary
        if (!IsComplete && canExtend) KeepCompletable(mask, destination, tokensLeft);
        if (IsComplete || !canExtend)
            foreach (var t in endTokens)
                if ((uint)t < (uint)n) destination[t] = logits[t];
    }

    private void KeepCompletable(ulong[] mask, Span<float> destination, int tokensLeft)
    {
        var state = State;
        var room = (long)tokensLeft - 2; // after this token, the completion and an end token must fit
        if (room >= state.MaxCostAfter) return; // every allowed token leaves room (the common case: far from the end)
        if (room + 1 < Constraint.Automaton.BytesToComplete(state)) return; // even one byte per token cannot finish: cut
        var costs = state.CostAfter ??= Constraint.CostsAfter(state, mask);
        var n = destination.Length;
        var k = 0;
        for (var w = 0; w < mask.Length; w++)
            for (var word = mask[w]; word != 0; word &= word - 1, k++)
            {
                var id = (w << 6) + BitOperations.TrailingZeroCount(word);
                if (costs[k] > room && id < n) destination[id] = float.NegativeInfinity;
            }
    }
}
