namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// A grammar compiled to a pushdown automaton over bytes, explored as a lazily built deterministic automaton.
/// Each rule becomes a Thompson NFA whose edges read a byte (out of a <see cref="ByteSet"/>), read nothing, or
/// call another rule. A parser configuration is a set of stacks; a stack is an interned linked list of frames, the
/// top one at an NFA state that reads a byte, the ones below it the states to return to. A set of stacks is interned
/// as a <see cref="MatchState"/>, whose transitions on each byte are computed once and kept: after warm-up, advancing
/// by a byte is an array lookup, and a state's token mask is computed once (<see cref="TokenMasker"/>).
/// Left recursion is refused at compile time (the closure would not terminate); everything else of a context-free
/// grammar is accepted, ambiguous grammars included (their stacks are all kept).
/// Not thread-safe: one thread (the engine's) explores a compiled automaton at a time.
/// </summary>
public sealed class ByteAutomaton
{
    /// <summary>Most NFA states a grammar may compile to (bounded repetition is expanded into copies).</summary>
    public const int MaxNfaStates = 400_000;

    /// <summary>When the lazily built states exceed this, they are dropped and rebuilt as needed (memory bound).</summary>
    public const int MaxMatchStates = 50_000;

    private readonly List<List<int>> _epsilon = [];
    private readonly List<List<(ByteSet Set, int Target)>> _bytes = [];
    private readonly List<List<(int Rule, int Target)>> _calls = [];
    private readonly List<int> _finalOf = []; // the rule whose final state this is, or -1
    private readonly int[] _start;
    private readonly int _rootRule;
    private readonly Dictionary<(int State, int Parent), Frame> _frames = [];
    private readonly Dictionary<int[], MatchState> _states = new(IntArrayComparer.Instance);
    private int _nextFrameId = 1;

    /// <summary>Compiles <paramref name="grammar"/>; throws <see cref="ConstraintException"/> for undefined rules or left recursion.</summary>
    public ByteAutomaton(Grammar grammar, string field)
    {
        var names = grammar.Rules.Keys.ToList();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < names.Count; i++) index[names[i]] = i;
        if (!index.TryGetValue(grammar.Root, out _rootRule))
            throw new ConstraintException(field, $"rule '{grammar.Root}' is not defined.");
        _start = new int[names.Count];
        for (var r = 0; r < names.Count; r++)
        {
            var start = NewState();
            var end = Build(grammar.Rules[names[r]], start, index, field);
            var final = NewState();
            _epsilon[end].Add(final);
            _finalOf[final] = r;
            _start[r] = start;
        }
        CheckLeftRecursion(names, field);
        _toEnd = ShortestCompletions();
        Start = Closure([(_start[_rootRule], null)]);
    }

    private readonly int[] _toEnd;

    /// <summary>
    /// Fewest bytes that complete a sentence from <paramref name="state"/> (0 when complete): the budget check
    /// (<see cref="ConstraintMatcher"/>) keeps an output completable within the tokens it has left.
    /// </summary>
    public int BytesToComplete(MatchState state)
    {
        if (state.BytesToComplete >= 0) return state.BytesToComplete;
        var best = state.Accepting ? 0 : int.MaxValue;
        foreach (var head in state.Heads) best = Math.Min(best, Cost(head));
        return state.BytesToComplete = best;

        int Cost(Frame f)
        {
            if (f.Cost < 0) f.Cost = (int)Math.Min(int.MaxValue / 2, (long)_toEnd[f.State] + (f.Parent is null ? 0 : Cost(f.Parent)));
            return f.Cost;
        }
    }

    /// <summary>Per NFA state, the fewest bytes to the end of its rule (calls cost their rule's shortest sentence).</summary>
    private int[] ShortestCompletions()
    {
        const int Infinite = int.MaxValue / 4;
        var n = _finalOf.Count;
        var dist = new int[n];
        for (var q = 0; q < n; q++) dist[q] = _finalOf[q] >= 0 ? 0 : Infinite;
        for (var changed = true; changed;)
        {
            changed = false;
            for (var q = n - 1; q >= 0; q--) // Thompson states mostly point forward: backward passes converge fast
            {
                var d = dist[q];
                foreach (var e in _epsilon[q]) d = Math.Min(d, dist[e]);
                foreach (var (_, target) in _bytes[q]) d = Math.Min(d, 1 + dist[target]);
                foreach (var (callee, target) in _calls[q]) d = Math.Min(d, Math.Min(Infinite, dist[_start[callee]] + dist[target]));
                if (d < dist[q]) { dist[q] = d; changed = true; }
            }
        }
        return dist;
    }

    /// <summary>The configuration before any byte.</summary>
    public MatchState Start { get; private set; }

    public int NfaStates => _finalOf.Count;

    /// <summary>Match states built so far (a measure of the lazily built automaton's size).</summary>
    public int MatchStates => _states.Count;

    /// <summary>The state after <paramref name="b"/>, or <see cref="MatchState.Dead"/> when the byte leaves the language.</summary>
    public MatchState Next(MatchState state, byte b)
    {
        if (state.IsDead) return state;
        var next = state.Transitions ??= new MatchState[256];
        return next[b] ??= Step(state, b);
    }

    private MatchState Step(MatchState state, byte b)
    {
        if (state.Heads.Length == 0) return MatchState.Dead;
        var seeds = _seeds;
        seeds.Clear();
        foreach (var head in state.Heads)
            foreach (var (set, target) in _bytes[head.State])
                if (set.Contains(b)) seeds.Add((target, head.Parent));
        if (seeds.Count == 0) return MatchState.Dead;
        if (_states.Count >= MaxMatchStates) Reset();
        return Closure(seeds);
    }

    /// <summary>
    /// Drops the interned states and frames so memory stays bounded; states held by running matchers stay valid
    /// (they keep their own frames and transitions), new ones are interned afresh.
    /// </summary>
    private void Reset()
    {
        _states.Clear();
        _frames.Clear();
    }

    // Scratch for Step and Closure, reused: exploring a new state is the slow path of a mask computation.
    private readonly List<(int, Frame?)> _seeds = [];
    private readonly HashSet<(int, int)> _visited = [];
    private readonly List<Frame> _heads = [];
    private readonly Stack<(int State, Frame? Parent)> _work = new();

    private MatchState Closure(List<(int State, Frame? Parent)> seeds)
    {
        var visited = _visited;
        var heads = _heads;
        var work = _work;
        visited.Clear();
        heads.Clear();
        work.Clear();
        foreach (var seed in seeds) work.Push(seed);
        var accepting = false;
        while (work.Count > 0)
        {
            var (q, parent) = work.Pop();
            if (!visited.Add((q, parent?.Id ?? 0))) continue;
            if (_bytes[q].Count > 0) heads.Add(Intern(q, parent));
            var rule = _finalOf[q];
            if (rule >= 0)
            {
                if (parent is null) accepting |= rule == _rootRule;
                else work.Push((parent.State, parent.Parent));
            }
            foreach (var e in _epsilon[q]) work.Push((e, parent));
            foreach (var (callee, target) in _calls[q]) work.Push((_start[callee], Intern(target, parent)));
        }
        if (heads.Count == 0 && !accepting) return MatchState.Dead;
        heads.Sort((x, y) => x.Id.CompareTo(y.Id));
        var key = new int[heads.Count + 1];
        for (var i = 0; i < heads.Count; i++) key[i] = heads[i].Id;
        key[^1] = accepting ? 1 : 0;
        if (_states.TryGetValue(key, out var existing)) return existing;
        var state = new MatchState([.. heads], accepting);
        _states[key] = state;
        return state;
    }

    private Frame Intern(int state, Frame? parent)
    {
        var key = (state, parent?.Id ?? 0);
        if (!_frames.TryGetValue(key, out var frame))
            _frames[key] = frame = new Frame(state, parent, _nextFrameId++);
        return frame;
    }

    private int NewState()
    {
        if (_finalOf.Count >= MaxNfaStates)
            throw new ConstraintException("constraint", $"the constraint is too large (more than {MaxNfaStates} automaton states); use smaller repetition bounds.");
        _epsilon.Add([]);
        _bytes.Add([]);
        _calls.Add([]);
        _finalOf.Add(-1);
        return _finalOf.Count - 1;
    }

    /// <summary>Thompson construction: adds <paramref name="node"/> starting at <paramref name="from"/>; returns its end state.</summary>
    private int Build(GrammarNode node, int from, Dictionary<string, int> rules, string field)
    {
        switch (node)
        {
            case ByteNode b:
            {
                var to = NewState();
                if (!b.Set.IsEmpty) _bytes[from].Add((b.Set, to));
                return to;
            }
            case SeqNode s:
                foreach (var item in s.Items) from = Build(item, from, rules, field);
                return from;
            case AltNode a:
            {
                var to = NewState();
                foreach (var item in a.Items)
                {
                    var start = NewState();
                    _epsilon[from].Add(start);
                    _epsilon[Build(item, start, rules, field)].Add(to);
                }
                return to;
            }
            case RepeatNode r:
            {
                for (var i = 0; i < r.Min; i++) from = Build(r.Item, from, rules, field);
                if (r.Max == RepeatNode.Unbounded)
                {
                    // from -> body -> back to from; leaving from ends the loop.
                    var start = NewState();
                    _epsilon[from].Add(start);
                    _epsilon[Build(r.Item, start, rules, field)].Add(from);
                    var exit = NewState();
                    _epsilon[from].Add(exit);
                    return exit;
                }
                var end = NewState();
                for (var i = r.Min; i < r.Max; i++)
                {
                    _epsilon[from].Add(end);
                    from = Build(r.Item, from, rules, field);
                }
                _epsilon[from].Add(end);
                return end;
            }
            case RuleRef call:
            {
                if (!rules.TryGetValue(call.Name, out var rule))
                    throw new ConstraintException(field, $"rule '{call.Name}' is not defined.");
                var to = NewState();
                _calls[from].Add((rule, to));
                return to;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(node));
        }
    }

    /// <summary>
    /// Refuses a rule that can call itself before reading a byte (directly or through rules that can be empty):
    /// exploring it would push frames forever.
    /// </summary>
    private void CheckLeftRecursion(List<string> names, string field)
    {
        var nullable = new bool[names.Count];
        for (var changed = true; changed;)
        {
            changed = false;
            for (var r = 0; r < names.Count; r++)
                if (!nullable[r] && ReachesEnd(r, nullable)) nullable[r] = changed = true;
        }
        var leftCalls = new List<int>[names.Count];
        for (var r = 0; r < names.Count; r++) leftCalls[r] = LeftCalls(r, nullable);
        var color = new int[names.Count]; // 0 new, 1 on the path, 2 done
        for (var r = 0; r < names.Count; r++) Visit(r);

        void Visit(int r)
        {
            if (color[r] == 2) return;
            if (color[r] == 1)
                throw new ConstraintException(field, $"rule '{names[r]}' is left-recursive (it can reach itself before reading any character); rewrite it with repetition.");
            color[r] = 1;
            foreach (var callee in leftCalls[r]) Visit(callee);
            color[r] = 2;
        }
    }

    /// <summary>States reachable from a rule's start without reading a byte (calls into nullable rules pass through).</summary>
    private IEnumerable<int> EmptyReach(int rule, bool[] nullable)
    {
        var seen = new HashSet<int>();
        var work = new Stack<int>();
        work.Push(_start[rule]);
        while (work.Count > 0)
        {
            var q = work.Pop();
            if (!seen.Add(q)) continue;
            yield return q;
            foreach (var e in _epsilon[q]) work.Push(e);
            foreach (var (callee, target) in _calls[q]) if (nullable[callee]) work.Push(target);
        }
    }

    private bool ReachesEnd(int rule, bool[] nullable)
    {
        foreach (var q in EmptyReach(rule, nullable)) if (_finalOf[q] == rule) return true;
        return false;
    }

    private List<int> LeftCalls(int rule, bool[] nullable)
    {
        var callees = new List<int>();
        foreach (var q in EmptyReach(rule, nullable)) foreach (var (callee, _) in _calls[q]) callees.Add(callee);
        return callees;
    }

    private sealed class IntArrayComparer : IEqualityComparer<int[]>
    {
        public static readonly IntArrayComparer Instance = new();
        public bool Equals(int[]? x, int[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(int[] a)
        {
            var h = new HashCode();
            h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
            return h.ToHashCode();
        }
    }
}

/// <summary>A stack frame: an NFA state, and the frame below it (the state to return to when a rule ends).</summary>
public sealed class Frame(int state, Frame? parent, int id)
{
    public int State { get; } = state;
    public Frame? Parent { get; } = parent;
    public int Id { get; } = id;

    /// <summary>Fewest bytes to finish this frame and those below it; -1 until computed.</summary>
    internal int Cost = -1;
}

/// <summary>
/// A parser configuration: the stacks whose top reads a byte next, and whether the bytes so far form a complete
/// sentence. Immutable apart from its memoized transitions and token mask, so matchers share it freely: forking a
/// matcher (n > 1, beams) copies one reference.
/// </summary>
public sealed class MatchState(Frame[] heads, bool accepting)
{
    /// <summary>No continuation: the bytes so far are not a prefix of the language.</summary>
    public static readonly MatchState Dead = new([], false);

    public Frame[] Heads { get; } = heads;
    public bool Accepting { get; } = accepting;
    public bool IsDead => Heads.Length == 0 && !Accepting;

    /// <summary>Successor per byte, filled in as explored (null: not computed yet).</summary>
    internal MatchState?[]? Transitions;

    /// <summary>Which tokens may follow (one bit per token id), computed on first use.</summary>
    internal ulong[]? Mask;

    /// <summary>Whether any token may follow (false: only an end token can).</summary>
    internal bool CanExtend;

    /// <summary>Fewest bytes to a complete sentence; -1 until computed.</summary>
    internal int BytesToComplete = -1;

    /// <summary>With the mask: the most bytes left to complete after any allowed token.</summary>
    internal int MaxCostAfter;

    /// <summary>Bytes left to complete after each allowed token (mask order), computed near the end of a budget only.</summary>
    internal int[]? CostAfter;
}
