using System.Diagnostics;
using ChatServices.InferenceService.Engine.KvCache;

namespace ChatServices.InferenceService.Engine.Scheduling;

/// <summary>Scheduler limits. <see cref="StepTokenBudget"/> must be at least <see cref="MaxBatchSize"/>.</summary>
/// <param name="MaxBatchSize">Most sequences running at once (decode rows of one step).</param>
/// <param name="StepTokenBudget">Most tokens fed in one step, decodes and prefill chunks together.</param>
/// <param name="PrefillChunkTokens">Most prompt tokens of one sequence fed in one step.</param>
/// <param name="PrefixCaching">Reuse the KV of earlier prompts and finished sequences.</param>
public sealed record SchedulerOptions(int MaxBatchSize, int StepTokenBudget, int PrefillChunkTokens, bool PrefixCaching);

/// <summary>What one step runs: sequences that decode one token, and prompt chunks (one sequence each).</summary>
public sealed class StepPlan
{
    public List<Sequence> Decodes { get; } = [];
    public List<(Sequence Sequence, int Tokens)> Prefills { get; } = [];
    public bool IsEmpty => Decodes.Count == 0 && Prefills.Count == 0;

    internal void Clear()
    {
        Decodes.Clear();
        Prefills.Clear();
    }

    internal void Remove(Sequence s)
    {
        Decodes.Remove(s);
        Prefills.RemoveAll(p => p.Sequence == s);
    }
}

/// <summary>
/// Decides, every step, which sequences run and how many tokens each is fed (iteration-level batching):
/// <list type="number">
/// <item>every running sequence that is decoding gets one token — decodes are never stalled by prompts;</item>
/// <item>sequences still prefilling get a chunk of at most <see cref="SchedulerOptions.PrefillChunkTokens"/>, oldest
/// first, while the step's token budget lasts (chunked prefill);</item>
/// <item>waiting sequences are admitted in arrival order while the batch, the budget and the KV pool allow; a prompt
/// whose leading tokens are cached starts from that KV (adopting a parked slot, or copying the prefix);</item>
/// <item>when an older sequence needs a slot and none is free — a request's samples forking after its prompt, or a
/// preempted sequence coming back — parked prefixes are evicted first; then the newest running sequence that
/// arrived after it is preempted: its slot is freed and it waits again at its arrival position with all its
/// tokens, to be recomputed when readmitted (the client sees only latency). Beam requests are never preempted:
/// their beams reserve their slots at admission.</item>
/// </list>
/// It owns the waiting queue and the running set and asks the pool and prefix cache for slots; it never touches
/// KV memory. Invariants: a running sequence holds a slot; a waiting one holds none; admission is first-come,
/// first-served (a request never overtakes an older one).
/// </summary>
public sealed class ContinuousBatchScheduler
{
    private readonly KvCachePool _pool;
    private readonly SchedulerOptions _options;
    private readonly LinkedList<Sequence> _waiting = new();
    private readonly List<Sequence> _running = [];
    private readonly List<KvSlot> _acquired = [];
    private readonly StepPlan _plan = new();
    private int _reservedSlots;

    public ContinuousBatchScheduler(KvCachePool pool, SchedulerOptions options)
    {
        if (options.StepTokenBudget < options.MaxBatchSize)
            throw new ArgumentException("StepTokenBudget must be at least MaxBatchSize.", nameof(options));
        _pool = pool;
        _options = options;
        PrefixCache = options.PrefixCaching ? new PrefixCache.PrefixCache(pool) : null;
    }

    public PrefixCache.PrefixCache? PrefixCache { get; }
    public int WaitingCount => _waiting.Count;
    public int RunningCount => _running.Count;
    public IReadOnlyList<Sequence> Running => _running;
    public long Preemptions { get; private set; }
    public bool HasWork => _running.Count > 0 || _waiting.Count > 0;

    /// <summary>Queues a sequence at its arrival position (new requests at the back, preempted ones further up).</summary>
    public void Enqueue(Sequence s)
    {
        var node = _waiting.Last;
        while (node is not null && node.Value.Arrival > s.Arrival) node = node.Previous;
        if (node is null) _waiting.AddFirst(s);
        else _waiting.AddAfter(node, s);
    }

    /// <summary>Adds a sequence that already holds a slot (a fork of a running leader).</summary>
    public void AddRunning(Sequence s)
    {
        if (s.Slot is null) throw new InvalidOperationException("A running sequence holds a slot.");
        _running.Add(s);
    }

    /// <summary>Slots reserved for a fork are now taken by the forked sequences.</summary>
    public void ConsumeReservation(int slots) => _reservedSlots -= slots;

    /// <summary>
    /// A slot for a sample forking from its running leader during a step: a free slot, else an evicted cached
    /// prefix. Null when there is none or the batch is full: the sample then waits in the queue at its request's
    /// arrival position, and the next <see cref="Schedule"/> admits it — preempting newer sequences if need be
    /// (preemption happens only while scheduling, never while a step runs).
    /// </summary>
    public KvSlot? TryAcquireForFork(int tokens)
    {
        if (_running.Count + _reservedSlots >= _options.MaxBatchSize || !MakeRoom(_pool.RoundToPage(tokens))) return null;
        return _pool.TryAcquire(out var slot) || (PrefixCache?.TryEvict() == true && _pool.TryAcquire(out slot)) ? slot : null;
    }

    /// <summary>Evicts cached prefixes until <paramref name="tokens"/> more fit in the token budget; false when they cannot.</summary>
    private bool MakeRoom(long tokens, KvSlot? keep = null)
    {
        while (!_pool.Fits(tokens))
            if (PrefixCache?.TryEvict(keep) != true) return false;
        return true;
    }

    /// <summary>Tokens the held KV grows by when <paramref name="s"/> is fed <paramref name="tokens"/> more (whole pages).</summary>
    private long Growth(Sequence s, int tokens) => _pool.RoundToPage(s.Computed + tokens) - _pool.RoundToPage(s.Computed);

    public StepPlan Schedule()
    {
        _plan.Clear();
        var budget = _options.StepTokenBudget;
        long growth = 0;
        foreach (var s in _running)
            if (s.Pending == 1) { _plan.Decodes.Add(s); budget--; growth += Growth(s, 1); }
        foreach (var s in _running)
            if (s.Pending > 1 && budget > 0)
            {
                var chunk = Math.Min(Math.Min(s.Pending, _options.PrefillChunkTokens), budget);
                _plan.Prefills.Add((s, chunk));
                budget -= chunk;
                growth += Growth(s, chunk);
            }
        // The KV the running sequences add this step must fit: cached prefixes go first, then the newest sequences.
        while (!MakeRoom(growth) && PreemptNewest(arrivedAfter: long.MinValue) is { } victim)
            growth -= PlannedGrowth(victim);

        while (budget > 0 && _waiting.First is { } node)
        {
            var head = node.Value;
            var need = head.Job.SlotsNeededBy(head);
            // Admission is bounded by tokens: the whole prompt's KV (each reserved beam's too) must fit beside what is held.
            var tokens = growth + need * _pool.RoundToPage(head.Tokens.Count);
            if (_running.Count + _reservedSlots + need > _options.MaxBatchSize || !MakeRoom(tokens) || !TryAdmit(head, need))
            {
                if (PreemptNewest(arrivedAfter: head.Arrival, except: head.Job) is not { } victim) break;
                growth -= PlannedGrowth(victim);
                continue;
            }
            _waiting.Remove(node);
            _running.Add(head);
            if (head.Pending == 1) { _plan.Decodes.Add(head); budget--; growth += Growth(head, 1); }
            else
            {
                var chunk = Math.Min(Math.Min(head.Pending, _options.PrefillChunkTokens), budget);
                _plan.Prefills.Add((head, chunk));
                budget -= chunk;
                growth += Growth(head, chunk);
            }
        }
        return _plan;
    }

    private static long PlannedGrowth((Sequence Sequence, int Tokens) victim) => victim.Tokens;

    /// <summary>A sequence finished: its slot is parked for prefix reuse (or freed when caching is off).</summary>
    public void Finish(Sequence s)
    {
        _running.Remove(s);
        ReleaseSlots(s, park: true);
    }

    /// <summary>Removes every sequence of a cancelled request, running or waiting, and frees its slots.</summary>
    public void Abort(GenerationJob job)
    {
        foreach (var s in job.Sequences)
        {
            if (!_running.Remove(s)) _waiting.Remove(s);
            ReleaseSlots(s, park: true);
        }
    }

    private void ReleaseSlots(Sequence s, bool park)
    {
        if (s.Slot is { } slot)
        {
            if (park && PrefixCache is not null) PrefixCache.Park(slot);
            else _pool.Release(slot);
            s.Slot = null;
        }
        if (s.Index == 0 && s.Job.ReservedSlots.Count > 0)
        {
            _reservedSlots -= s.Job.ReservedSlots.Count;
            foreach (var r in s.Job.ReservedSlots) _pool.Release(r);
            s.Job.ReservedSlots.Clear();
        }
    }

    private bool TryAdmit(Sequence head, int need)
    {
        var tokens = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(head.Tokens);
        var match = PrefixCache?.FindLongest(tokens, tokens.Length - 1, RunningSlots());
        KvSlot? adopted = null;
        if (match is { Parked: true } m && (m.Tokens == m.Slot.Length || m.Tokens == tokens.Length - 1))
        {
            // The parked KV is this prompt's prefix (typically the conversation so far): take the slot as it is.
            adopted = m.Slot;
            PrefixCache!.Take(adopted);
        }

        _acquired.Clear();
        for (var i = adopted is null ? 0 : 1; i < need; i++)
        {
            if (_pool.TryAcquire(out var slot) || (PrefixCache?.TryEvict(keep: match?.Slot) == true && _pool.TryAcquire(out slot)))
                _acquired.Add(slot);
            else
            {
                foreach (var a in _acquired) _pool.Release(a);
                if (adopted is not null) PrefixCache!.Park(adopted);
                return false;
            }
        }

        var main = adopted ?? _acquired[0];
        if (adopted is not null) adopted.Truncate(match!.Value.Tokens);
        else if (match is { } copy) _pool.CopyPrefix(copy.Slot, main, copy.Tokens);
        PrefixCache?.Record(match);
        head.Slot = main;
        for (var i = adopted is null ? 1 : 0; i < _acquired.Count; i++) head.Job.ReservedSlots.Add(_acquired[i]);
        _reservedSlots += need - 1;
        if (!head.Job.Admitted)
        {
            head.Job.Admitted = true;
            head.Job.AdmittedTimestamp = Stopwatch.GetTimestamp();
            head.Job.CachedPromptTokens = main.Length;
        }
        return true;
    }

    private IEnumerable<KvSlot> RunningSlots()
    {
        foreach (var s in _running)
            if (s.Slot is { } slot) yield return slot;
    }

    /// <summary>
    /// Preempts the newest running sequence that arrived after <paramref name="arrivedAfter"/> (beam requests and
    /// <paramref name="except"/> excluded): its slot is freed and it waits again. Returns it with the tokens its
    /// planned feed would have added to the held KV (0 when it was not planned this step), or null when there is none.
    /// </summary>
    private (Sequence Sequence, int Tokens)? PreemptNewest(long arrivedAfter, GenerationJob? except = null)
    {
        Sequence? victim = null;
        foreach (var s in _running)
            if (s.Arrival > arrivedAfter && s.Job != except && s.Job.Beam is null && (victim is null || s.Arrival >= victim.Arrival))
                victim = s;
        if (victim is null) return null;
        var planned = _plan.Decodes.Contains(victim) ? 1 : _plan.Prefills.Find(p => p.Sequence == victim).Tokens;
        var growth = planned == 0 ? 0 : (int)Growth(victim, planned);
        _running.Remove(victim);
        _plan.Remove(victim);
        ReleaseSlots(victim, park: false);
        Enqueue(victim);
        Preemptions++;
        return (victim, growth);
    }
}
