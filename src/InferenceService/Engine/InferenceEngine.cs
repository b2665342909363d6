using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using ChatServices.InferenceService.Engine.BeamSearch;
using ChatServices.InferenceService.Engine.Constraints;
using ChatServices.InferenceService.Engine.KvCache;
using ChatServices.InferenceService.Engine.Sampling;
using ChatServices.InferenceService.Engine.Scheduling;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ChatServices.InferenceService.Engine;

/// <summary>
/// The engine: one dedicated thread runs steps for as long as there is work. Requests arrive through
/// <see cref="Submit"/> (from any thread) and are queued for the next step; each step the scheduler picks the batch,
/// the decoder runs it, the sampler picks tokens, and each request's events go to its own channel. A request joins
/// the running batch at the step after it arrives and leaves the moment it finishes or is cancelled.
/// Invariant: only the engine thread touches the scheduler, the KV pool, the decoder and the sampler.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly InferenceOptions _options;
    private readonly ILogger _logger;
    private readonly InferenceSession _session;
    private readonly KvCachePool _pool;
    private readonly OnnxDecoder _decoder;
    private readonly ContinuousBatchScheduler _scheduler;
    private readonly TokenSampler _sampler;
    private readonly HashSet<int> _eos;
    private readonly ConstraintCache _constraints;
    private readonly float[] _masked;
    private readonly ConcurrentQueue<GenerationJob> _inbox = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly List<GenerationJob> _active = [];
    private readonly List<DecodeRow> _rows = [];
    private readonly List<PrefillRow> _prefillRows = [];
    private readonly List<(Sequence Sequence, int Tokens)> _prefillGroup = [];
    private readonly bool _batchedPrefill;
    private long _prefillChunks;
    private long _prefillRuns;
    private int _peakRunning;
    private readonly List<GenerationJob> _beamJobs = [];
    private readonly List<(IReadOnlyList<int>, double)> _beamInputs = [];
    private readonly Thread _thread;
    private readonly int _maxWidth;
    private long _arrivals;
    private int _queued;
    private long _generatedTokens;
    private volatile EngineStatus _status;
    private volatile bool _stopping;
    private volatile bool _draining;
    private volatile string? _stopReason;
    private int _inFlight;

    private InferenceEngine(InferenceOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        var folder = ModelFolder.Load(options.ModelPath);
        using var sessionOptions = new Microsoft.ML.OnnxRuntime.SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        if (options.IntraOpThreads > 0) sessionOptions.IntraOpNumThreads = options.IntraOpThreads;
        ExecutionProvider = options.ExecutionProvider.ToLowerInvariant() switch
        {
            "cpu" => "CPUExecutionProvider",
            "cuda" => "CUDAExecutionProvider",
            var other => throw new ArgumentException($"Inference:ExecutionProvider '{other}' is not one of cpu, cuda."),
        };
        if (ExecutionProvider == "CUDAExecutionProvider") sessionOptions.AppendExecutionProvider_CUDA(options.CudaDeviceId);
        _session = new InferenceSession(folder.ModelFile, sessionOptions);
        (Model, var kvType) = folder.Inspect(_session);

        var geometry = new KvCacheGeometry(Model.Layers, Model.KvHeads, Model.HeadSize, kvType == TensorElementType.Float16 ? 2 : 4);
        var capacity = options.MaxSequenceTokens > 0 ? Math.Min(options.MaxSequenceTokens, Model.ContextLength) : Model.ContextLength;
        var (budgetBytes, budgetSource) = KvBudget(options);
        var tokenBudget = budgetBytes / geometry.BytesPerToken;
        if (tokenBudget < capacity)
            throw new ArgumentException(
                $"The KV-cache budget ({budgetBytes >> 20} MiB, {budgetSource}) holds no whole sequence: {capacity} tokens need " +
                $"{(geometry.BytesPerToken * capacity + (1 << 20) - 1) >> 20} MiB. Raise Inference:KvCacheBudgetMiB (or " +
                "Inference:KvCacheMemoryFraction) or lower Inference:MaxSequenceTokens.");
        // With virtual memory (Linux) a slot costs only the tokens it holds: a slot for every sequence that may run,
        // as many again for cached prefixes, and the token budget bounds admission. Otherwise slots are allocated
        // whole, so the budget is divided into slots as before.
        var slots = OperatingSystem.IsLinux()
            ? (int)Math.Min(2L * Math.Max(1, options.MaxBatchSize), tokenBudget)
            : KvCachePool.SlotsForBudget(geometry, budgetBytes, capacity);
        _pool = new KvCachePool(geometry, slots, capacity, tokenBudget);
        if (_pool.RoundToPage(capacity) > tokenBudget)
        {
            _pool.Dispose();
            throw new ArgumentException(
                $"The KV-cache budget ({budgetBytes >> 20} MiB, {budgetSource}) holds {tokenBudget} tokens, less than one whole sequence of " +
                $"{capacity} tokens in whole pages ({_pool.RoundToPage(capacity)}). Raise the budget or lower Inference:MaxSequenceTokens.");
        }
        var batch = Math.Min(options.MaxBatchSize, slots);
        _maxWidth = Math.Min(options.MaxWidth, batch);
        _scheduler = new ContinuousBatchScheduler(_pool, new SchedulerOptions(batch, Math.Max(options.StepTokenBudget, batch),
            Math.Max(1, options.PrefillChunkTokens), options.PrefixCaching));
        // A batched prefill step holds up to the step budget of (padded) prompt tokens; with all-position logits that
        // many logit rows too, so such graphs keep to one chunk's worth.
        var stepTokens = Math.Max(1, options.PrefillChunkTokens);
        if (Model.LastTokenLogits && options.BatchedPrefill) stepTokens = Math.Max(stepTokens, options.StepTokenBudget);
        _decoder = new OnnxDecoder(Model, _session, _pool, kvType, stepTokens);
        // Right-padded first prompts in one GroupQueryAttention run are verified (tests, bench) on the CPU provider only.
        _batchedPrefill = options.BatchedPrefill && Model.Convention == DecoderConvention.GroupQueryAttention
            && ExecutionProvider == "CPUExecutionProvider";
        if (options.BatchedPrefill && !_batchedPrefill)
            _logger.LogInformation("Inference:BatchedPrefill: prompt chunks run one per step here ({Convention} graph on {Provider}); batched runs need a GroupQueryAttention graph on the CPU provider",
                Model.Convention, ExecutionProvider);
        _sampler = new TokenSampler(Model.VocabSize);
        _eos = [.. Model.EosTokenIds];
        _status = CurrentStatus();
        Metrics = new EngineMetrics(() => _status);
        _constraints = new ConstraintCache(LoadVocabulary, meter: Metrics.Meter);
        _masked = new float[Model.VocabSize];
        _thread = new Thread(Loop) { Name = "inference-engine", IsBackground = true };
        _thread.Start();
        _logger.LogInformation(
            "Loaded {Model} ({Layers} layers, vocab {Vocab}, context {Context}, logits {Logits}) on {Provider}: KV cache budget {BudgetMiB} MiB ({BudgetSource}) = " +
            "{TokenBudget} tokens of {TokenBytes} bytes, {Slots} slots of up to {Capacity} tokens ({Memory}), batch {Batch}",
            Model.Path, Model.Layers, Model.VocabSize, Model.ContextLength, Model.LastTokenLogits ? "last token" : "every position",
            ExecutionProvider, budgetBytes >> 20, budgetSource, tokenBudget, geometry.BytesPerToken, slots, capacity,
            _pool.VirtualMemory ? "host memory committed as tokens are stored" : $"{_pool.TotalBytes >> 20} MiB host memory allocated", batch);
    }

    /// <summary>
    /// The KV-cache budget in bytes and where it came from: <see cref="InferenceOptions.KvCacheBudgetMiB"/> when set,
    /// else <see cref="InferenceOptions.KvCacheMemoryFraction"/> of the host memory available now (MemAvailable,
    /// within the cgroup's limit). The cache lives in host memory with either execution provider.
    /// </summary>
    private static (long Bytes, string Source) KvBudget(InferenceOptions options)
    {
        if (options.KvCacheBudgetMiB > 0) return ((long)(options.KvCacheBudgetMiB * (1 << 20)), "Inference:KvCacheBudgetMiB");
        if (options.KvCacheMemoryFraction is <= 0 or > 1)
            throw new ArgumentException($"Inference:KvCacheMemoryFraction={options.KvCacheMemoryFraction} is not in (0, 1].");
        var available = AvailableMemoryBytes();
        return ((long)(available * options.KvCacheMemoryFraction),
            $"{options.KvCacheMemoryFraction:P0} of {available >> 20} MiB available host memory");
    }

    private static long AvailableMemoryBytes()
    {
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (File.Exists("/proc/meminfo"))
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line.AsSpan(13).Trim().TrimEnd("kB").Trim(), out var kib))
                    available = kib * 1024;
        // In a container (cgroup v2) the limit, not the host, bounds what is free.
        if (long.TryParse(ReadOrEmpty("/sys/fs/cgroup/memory.max"), out var max)
            && long.TryParse(ReadOrEmpty("/sys/fs/cgroup/memory.current"), out var current))
            available = Math.Min(available, Math.Max(0, max - current));
        return available;
    }

    private static string ReadOrEmpty(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "";

    /// <summary>Loads the model and starts the engine thread.</summary>
    public static InferenceEngine Start(InferenceOptions options, ILogger? logger = null) => new(options, logger ?? NullLogger.Instance);

    public ModelFolder Model { get; }
    public string ExecutionProvider { get; }
    public EngineMetrics Metrics { get; }
    public EngineStatus Status => _status;
    public int MaxWidth => _maxWidth;

    /// <summary>
    /// Validates and queues a request; its events arrive on the returned reader, ending with
    /// <see cref="GenerationCompleted"/> (or an exception: <see cref="OperationCanceledException"/> when cancelled).
    /// Throws <see cref="InvalidRequestException"/> for bad parameters and <see cref="QueueFullException"/> when the
    /// waiting queue is full, both before anything is queued.
    /// </summary>
    public ChannelReader<GenerationEvent> Submit(GenerationRequest request, CancellationToken cancellation = default)
    {
        RequestValidation.Validate(request, Model.VocabSize, _pool.SlotCapacity, _maxWidth);
        // Beams reserve a copy of the prompt each at admission: all of them must fit in the KV budget at once.
        if (request.BeamSearch is { NumBeams: var beams } && beams * _pool.RoundToPage(request.PromptTokenIds.Length + 1) > _pool.TokenBudget)
            throw new InvalidRequestException("beam_search.num_beams",
                $"{beams} beams of a {request.PromptTokenIds.Length}-token prompt do not fit in the KV cache ({_pool.TokenBudget} tokens); use fewer beams or a shorter prompt.");
        var constraint = request.Constraint is { } spec ? CompileConstraint(spec) : null; // before the queue counts it
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (_draining) throw new EngineShutdownException("InferenceService is shutting down and takes no new requests; retry on another replica.");
        if (Interlocked.Increment(ref _queued) > _options.MaxQueue)
        {
            Interlocked.Decrement(ref _queued);
            throw new QueueFullException($"The inference queue is full ({_options.MaxQueue} requests waiting); retry later.");
        }
        var maxNew = Math.Min(request.MaxNewTokens ?? int.MaxValue, _pool.SlotCapacity - request.PromptTokenIds.Length);
        var job = new GenerationJob(request, Interlocked.Increment(ref _arrivals), maxNew, cancellation)
        {
            Constraint = constraint,
            EndTokens = constraint is null ? [] : [.. request.StopTokenIds, .. request.IgnoreEos ? Array.Empty<int>() : Model.EosTokenIds],
        };
        Interlocked.Increment(ref _inFlight);
        _inbox.Enqueue(job);
        if (cancellation.CanBeCanceled) cancellation.Register(static s => ((SemaphoreSlim)s!).Release(), _wake);
        _wake.Release();
        return job.Events.Reader;
    }

    /// <summary>The constraint compile cache (compiled once per distinct constraint, for this model's vocabulary).</summary>
    public ConstraintCache Constraints => _constraints;

    private CompiledConstraint CompileConstraint(ConstraintSpec spec)
    {
        try
        {
            return _constraints.Get(spec);
        }
        catch (ConstraintException e)
        {
            throw new InvalidRequestException(e.Field, e.Message);
        }
    }

    private TokenVocabulary LoadVocabulary()
    {
        var path = System.IO.Path.Combine(Model.Path, "tokenizer.json");
        if (!File.Exists(path))
            throw new ConstraintException("constraint", "this model folder has no tokenizer.json, so its tokens' text is unknown and outputs cannot be constrained.");
        return TokenVocabulary.Load(path, Model.VocabSize);
    }

    /// <summary>Runs a request to completion and returns its final event (tests, benchmarks).</summary>
    public async Task<GenerationCompleted> GenerateAsync(GenerationRequest request, CancellationToken cancellation = default)
    {
        var reader = Submit(request, cancellation);
        await foreach (var e in reader.ReadAllAsync(cancellation))
            if (e is GenerationCompleted done) return done;
        throw new InvalidOperationException("The engine ended the request without a completion.");
    }

    private void Loop()
    {
        while (!_stopping)
        {
            try
            {
                if (!Step()) _wake.Wait(TimeSpan.FromMilliseconds(250));
            }
            catch (Exception e) when (!_stopping)
            {
                // A failed step (ONNX Runtime error) fails the requests in flight; the engine itself keeps serving.
                _logger.LogError(e, "Engine step failed; failing {Count} active requests", _active.Count);
                foreach (var job in _active) { _scheduler.Abort(job); Complete(job, e); CountAdmitted(job); }
                _active.Clear();
            }
            _status = CurrentStatus();
        }
        foreach (var job in _active) Complete(job, new ObjectDisposedException(nameof(InferenceEngine)));
        while (_inbox.TryDequeue(out var late)) Complete(late, new ObjectDisposedException(nameof(InferenceEngine)));
    }

    /// <summary>Requests submitted and not yet ended (queued or generating).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>
    /// Starts draining: from now on <see cref="Submit"/> refuses with <see cref="EngineShutdownException"/>, while
    /// the requests already submitted go on to their end.
    /// </summary>
    public void BeginDrain() => _draining = true;

    /// <summary>Waits until every submitted request has ended; false when <paramref name="timeout"/> passed first.</summary>
    public async Task<bool> WaitUntilIdleAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (InFlight > 0)
        {
            if (Stopwatch.GetTimestamp() >= deadline) return false;
            await Task.Delay(50);
        }
        return true;
    }

    /// <summary>
    /// Ends every request still queued or generating with <see cref="EngineShutdownException"/> carrying
    /// <paramref name="reason"/> (at the engine's next step), after the tokens generated so far were published.
    /// </summary>
    public void StopRemaining(string reason)
    {
        _draining = true;
        _stopReason = reason;
        _wake.Release();
    }

    /// <summary>One engine step. Returns false when there was nothing to run.</summary>
    private bool Step()
    {
        while (_inbox.TryDequeue(out var job))
        {
            _active.Add(job);
            _scheduler.Enqueue(job.Leader);
        }
        if (_stopReason is { } reason) StopActive(reason);
        ReapCancelled();

        var plan = _scheduler.Schedule();
        _peakRunning = Math.Max(_peakRunning, _scheduler.RunningCount);
        foreach (var job in _active) if (job.Admitted) CountAdmitted(job);
        if (plan.IsEmpty) return false;
        Metrics.Step(plan.Prefills.Count + plan.Decodes.Count);

        if (_batchedPrefill) RunPrefillsBatched(plan.Prefills, first: plan.Decodes.Count);
        else
            foreach (var (s, count) in plan.Prefills) RunPrefill(s, count);

        if (plan.Decodes.Count > 0)
        {
            _rows.Clear();
            foreach (var s in plan.Decodes) _rows.Add(new DecodeRow(s.Slot!, s.Tokens[^1]));
            var logits = _decoder.Decode(CollectionsMarshal.AsSpan(_rows));
            var vocab = Model.VocabSize;
            // Decode arranged the slots as rows 0..B-1: a sequence's logits are at its slot index. Beam requests
            // advance all their beams at once, after the loop (those forking this step have already chosen).
            _beamJobs.Clear();
            foreach (var s in plan.Decodes)
                if (s.Job.Beam is not null && s.Job.Forked && s.Index == 0) _beamJobs.Add(s.Job);
            foreach (var s in plan.Decodes)
                if (s.Job.Beam is null || !s.Job.Forked)
                    OnLogits(s, logits.Slice(s.Slot!.Index * vocab, vocab));
            foreach (var job in _beamJobs)
                if (!job.Beam!.IsDone) AdvanceBeams(job, logits);
        }

        Publish();
        return true;
    }

    private void RunPrefill(Sequence s, int count)
    {
        var logits = _decoder.Prefill(s.Slot!, CollectionsMarshal.AsSpan(s.Tokens).Slice(s.Computed, count));
        _prefillRuns++;
        _prefillChunks++;
        if (s.Pending == 0) OnLogits(s, logits);
    }

    /// <summary>
    /// Runs the step's prompt chunks in as few ONNX Runtime runs as the graph allows: the first chunks of sequences
    /// that hold no KV yet together, right padded to the longest (longest first, so that padding stays small; a run
    /// holds at most the decoder's step size of padded tokens); chunks over existing KV one by one (see
    /// <see cref="OnnxDecoder"/>). Runs are placed at pool indices after the step's decode rows
    /// (<paramref name="first"/>), where those sequences decode from the next step on.
    /// </summary>
    private void RunPrefillsBatched(List<(Sequence Sequence, int Tokens)> prefills, int first)
    {
        _prefillGroup.Clear();
        foreach (var (s, count) in prefills)
            if (s.Computed == 0 && count <= _options.BatchedPrefillMaxChunkTokens) _prefillGroup.Add((s, count));
            else RunPrefill(s, count);
        _prefillGroup.Sort((a, b) => b.Tokens.CompareTo(a.Tokens));
        var at = first;
        for (var start = 0; start < _prefillGroup.Count;)
        {
            var longest = _prefillGroup[start].Tokens;
            var rows = 1;
            while (start + rows < _prefillGroup.Count && (rows + 1L) * longest <= _decoder.MaxTokensPerStep && rows + 1 <= _pool.SlotCount) rows++;
            if (rows == 1) { RunPrefill(_prefillGroup[start].Sequence, longest); start++; continue; }

            _prefillRows.Clear();
            for (var i = start; i < start + rows; i++)
            {
                var s = _prefillGroup[i].Sequence;
                _prefillRows.Add(new PrefillRow(s.Slot!, s.Tokens, 0, _prefillGroup[i].Tokens));
            }
            // After the decode rows and the previous runs of this step when they fit; else at the pool's end.
            if (at + rows > _pool.SlotCount) at = _pool.SlotCount - rows;
            var logits = _decoder.PrefillBatch(CollectionsMarshal.AsSpan(_prefillRows), at);
            _prefillRuns++;
            _prefillChunks += rows;
            var vocab = Model.VocabSize;
            // Row logits sit at slot index − at; sampling (forks copy KV, never move slots) leaves the indices as they are.
            for (var i = start; i < start + rows; i++)
            {
                var s = _prefillGroup[i].Sequence;
                if (s.Pending == 0) OnLogits(s, logits.Slice((s.Slot!.Index - at) * vocab, vocab));
            }
            at += rows;
            start += rows;
        }
    }

    private void OnLogits(Sequence s, ReadOnlySpan<float> logits)
    {
        var job = s.Job;
        if (job.Forked || s.Index != 0)
        {
            SampleInto(s, logits);
            return;
        }
        // The leader's prompt is computed: fork the request's other sequences from its KV (slots reserved at admission).
        job.Forked = true;
        if (job.Beam is not null)
        {
            StartBeams(job, logits);
            return;
        }
        var ready = new List<Sequence>(job.Width) { s };
        for (var i = 1; i < job.Width; i++)
        {
            var sibling = new Sequence(job, i, [.. s.Tokens], s.PromptLength,
                job.Request.Sampling.Seed is { } seed ? new SeededRandom(SeededRandom.Derive(seed, i)) : SeededRandom.FromEntropy());
            job.Sequences.Add(sibling);
            if (_scheduler.TryAcquireForFork(s.Slot!.Length) is { } slot)
            {
                sibling.Slot = slot;
                _pool.CopyPrefix(s.Slot!, slot, s.Slot!.Length);
                _scheduler.AddRunning(sibling);
                ready.Add(sibling);
            }
            else _scheduler.Enqueue(sibling); // admitted later, copying the prompt's KV from the leader or the cache
        }
        foreach (var seq in ready) SampleInto(seq, logits);
    }

    private KvSlot TakeReserved(GenerationJob job)
    {
        var slot = job.ReservedSlots[^1];
        job.ReservedSlots.RemoveAt(job.ReservedSlots.Count - 1);
        _scheduler.ConsumeReservation(1);
        return slot;
    }

    private void SampleInto(Sequence s, ReadOnlySpan<float> logits)
    {
        var job = s.Job;
        var top = job.Request.TopLogprobs > 0 ? new TokenLogprob[Math.Min(job.Request.TopLogprobs, Model.VocabSize)] : null;
        if (s.Matcher is { } matcher)
        {
            matcher.MaskLogits(logits, _masked, job.EndTokens, job.MaxNewTokens - s.Generated);
            logits = _masked;
        }
        // The log-softmax over the vocabulary runs only when the request reports log-probabilities.
        var token = _sampler.Sample(logits, job.Request.Sampling, s.History, s.Rng, top, logprob: job.Request.Logprobs);
        if (top is not null && s.Matcher is not null) top = WithoutRuledOut(top);
        s.Tokens.Add(token.TokenId);
        s.History?.AddGenerated(token.TokenId);
        s.CumulativeLogprob += token.Logprob;
        job.StepTokens.Add(new GeneratedToken(s.Index, token.TokenId, token.Logprob, top));
        _generatedTokens++;
        MarkFirstToken(job);
        if (IsStop(job, token.TokenId)) Finish(s, FinishReason.Stop);
        else
        {
            s.Matcher?.Accept(token.TokenId);
            if (s.Generated >= job.MaxNewTokens) Finish(s, FinishReason.Length);
        }
    }

    /// <summary>
    /// Top log-probabilities without the tokens a constraint rules out (−∞ after masking): where fewer tokens are
    /// allowed than were asked for, only the allowed ones are candidates.
    /// </summary>
    private static TokenLogprob[] WithoutRuledOut(TokenLogprob[] top)
    {
        var firstRuledOut = Array.FindIndex(top, t => float.IsNegativeInfinity(t.Logprob));
        return firstRuledOut < 0 ? top : top[..firstRuledOut];
    }

    /// <summary>A copy of a beam's logits row, masked by its constraint matcher if it has one.</summary>
    private static float[] BeamRow(Sequence beam, ReadOnlySpan<float> logits)
    {
        if (beam.Matcher is not { } matcher) return logits.ToArray();
        var row = new float[logits.Length];
        matcher.MaskLogits(logits, row, beam.Job.EndTokens, beam.Job.MaxNewTokens - beam.Generated);
        return row;
    }

    private bool IsStop(GenerationJob job, int token) =>
        (!job.Request.IgnoreEos && _eos.Contains(token)) || Array.IndexOf(job.Request.StopTokenIds, token) >= 0;

    private void Finish(Sequence s, FinishReason reason)
    {
        s.FinishReason = reason;
        _scheduler.Finish(s);
    }

    private void MarkFirstToken(GenerationJob job)
    {
        if (job.FirstTokenTimestamp != 0) return;
        job.FirstTokenTimestamp = Stopwatch.GetTimestamp();
        Metrics.FirstToken(Stopwatch.GetElapsedTime(job.StartTimestamp, job.FirstTokenTimestamp).TotalSeconds);
    }

    private void StartBeams(GenerationJob job, ReadOnlySpan<float> logits)
    {
        var leader = job.Leader;
        var first = BeamRow(leader, logits); // beam selection reads it through a callback
        _beamInputs.Clear();
        _beamInputs.Add((leader.Tokens, 0d));
        var choices = job.Beam!.Step(_beamInputs, _ => first, t => IsStop(job, t));
        var spare = new List<Sequence>();
        for (var i = 1; i < job.Width; i++)
        {
            var beam = new Sequence(job, i, [], leader.PromptLength, leader.Rng) { Slot = TakeReserved(job), History = null };
            job.Sequences.Add(beam);
            _scheduler.AddRunning(beam);
            spare.Add(beam);
        }
        ApplyBeams(job, [leader], choices, spare);
    }

    private void AdvanceBeams(GenerationJob job, ReadOnlySpan<float> logits)
    {
        var beams = job.Sequences;
        _beamInputs.Clear();
        foreach (var b in beams) _beamInputs.Add((b.Tokens, b.CumulativeLogprob));
        // The callback cannot capture a span: copy each beam's logits row once (k rows per step).
        var vocab = Model.VocabSize;
        var rows = new float[beams.Count][];
        for (var i = 0; i < beams.Count; i++) rows[i] = BeamRow(beams[i], logits.Slice(beams[i].Slot!.Index * vocab, vocab));
        var choices = job.Beam!.Step(_beamInputs, i => rows[i], t => IsStop(job, t));
        ApplyBeams(job, [.. beams], choices, []);
    }

    /// <summary>
    /// Makes the job's sequences the chosen beams. A parent's first child continues in the parent's sequence and
    /// slot (no copy); each further child takes the sequence of a parent that has no child, copying the parent's
    /// KV and tokens first. Sequences left without a beam finish; when the search is done every beam finishes.
    /// </summary>
    private void ApplyBeams(GenerationJob job, List<Sequence> parents, List<BeamChoice> choices, List<Sequence> spare)
    {
        // A constraint can leave fewer continuations than beams for a step; the beams then narrow for good, as the
        // slots of the sequences left without a child are freed.
        if (choices.Count > parents.Count + spare.Count) choices.RemoveRange(parents.Count + spare.Count, choices.Count - parents.Count - spare.Count);
        var children = new int[parents.Count];
        foreach (var c in choices) children[c.Parent]++;
        for (var p = 0; p < parents.Count; p++) if (children[p] == 0) spare.Add(parents[p]);

        var next = new Sequence[choices.Count];
        var firstChildTaken = new bool[parents.Count];
        var matchers = parents.ConvertAll(p => p.Matcher); // a child continues its parent's position in the constraint
        var spareAt = 0;
        for (var i = 0; i < choices.Count; i++)
        {
            var parent = parents[choices[i].Parent];
            if (!firstChildTaken[choices[i].Parent]) { firstChildTaken[choices[i].Parent] = true; next[i] = parent; continue; }
            var seq = spare[spareAt++];
            _pool.CopyPrefix(parent.Slot!, seq.Slot!, parent.Slot!.Length);
            seq.Tokens.Clear();
            seq.Tokens.AddRange(parent.Tokens);
            next[i] = seq;
        }
        for (var i = 0; i < choices.Count; i++)
        {
            next[i].Tokens.Add(choices[i].TokenId);
            next[i].CumulativeLogprob = choices[i].CumulativeLogprob;
            next[i].Matcher = matchers[choices[i].Parent]?.Fork();
            next[i].Matcher?.Accept(choices[i].TokenId);
            next[i].Index = i;
        }
        for (; spareAt < spare.Count; spareAt++) Finish(spare[spareAt], FinishReason.Length);
        job.Sequences.Clear();
        job.Sequences.AddRange(next);
        if (job.Beam!.IsDone)
            foreach (var s in next) Finish(s, FinishReason.Length);
        _generatedTokens++;
        MarkFirstToken(job);
    }

    private void StopActive(string reason)
    {
        foreach (var job in _active)
        {
            _scheduler.Abort(job);
            CountAdmitted(job);
            Complete(job, new EngineShutdownException(reason));
        }
        _active.Clear();
    }

    /// <summary>Ends a request's event stream (with <paramref name="error"/>, or normally) and counts it out.</summary>
    private void Complete(GenerationJob job, Exception? error)
    {
        if (job.Events.Writer.TryComplete(error)) Interlocked.Decrement(ref _inFlight);
    }

    private void ReapCancelled()
    {
        for (var i = _active.Count - 1; i >= 0; i--)
        {
            var job = _active[i];
            if (!job.Cancellation.IsCancellationRequested) continue;
            _scheduler.Abort(job);
            CountAdmitted(job);
            Complete(job, new OperationCanceledException(job.Cancellation));
            _active.RemoveAt(i);
        }
    }

    private void CountAdmitted(GenerationJob job)
    {
        if (job.LeftQueue) return;
        job.LeftQueue = true;
        Interlocked.Decrement(ref _queued);
    }

    private void Publish()
    {
        var now = Stopwatch.GetTimestamp();
        for (var i = _active.Count - 1; i >= 0; i--)
        {
            var job = _active[i];
            if (job.StepTokens.Count > 0)
            {
                if (job.LastTokenTimestamp != 0) Metrics.InterTokenLatency(Stopwatch.GetElapsedTime(job.LastTokenTimestamp, now).TotalSeconds);
                job.LastTokenTimestamp = now;
            }
            if (job.StepTokens.Count > 0 && job.Beam is null)
                job.Events.Writer.TryWrite(new TokensGenerated([.. job.StepTokens]));
            job.StepTokens.Clear();
            if (!job.IsFinished) continue;
            job.Events.Writer.TryWrite(Completion(job));
            Complete(job, null);
            _active.RemoveAt(i);
        }
    }

    private GenerationCompleted Completion(GenerationJob job)
    {
        var prompt = job.Request.PromptTokenIds.Length;
        CompletedSequence[] sequences;
        if (job.Beam is { } beam)
            sequences = [.. beam.Finished.Select((h, i) => new CompletedSequence(i, h.TokenIds, h.FinishReason, h.Score))];
        else
            sequences = [.. job.Sequences.Select(s => new CompletedSequence(s.Index, [.. s.Tokens.Skip(s.PromptLength)], s.FinishReason!.Value, s.CumulativeLogprob))];
        var completion = sequences.Sum(s => s.TokenIds.Length);
        var now = Stopwatch.GetTimestamp();
        var ttft = Stopwatch.GetElapsedTime(job.StartTimestamp, job.FirstTokenTimestamp).TotalSeconds;
        var perToken = completion > 1 ? Stopwatch.GetElapsedTime(job.FirstTokenTimestamp, now).TotalSeconds / (completion / job.Width - 1 is > 0 and var n ? n : 1) : 0;
        var duration = Stopwatch.GetElapsedTime(job.StartTimestamp, now).TotalSeconds;
        var queued = job.AdmittedTimestamp == 0 ? 0 : Stopwatch.GetElapsedTime(job.StartTimestamp, job.AdmittedTimestamp).TotalSeconds;
        Metrics.Completed(duration, queued, perToken, prompt, completion);
        return new GenerationCompleted(sequences, new GenerationUsage(prompt, completion, job.CachedPromptTokens, ttft, queued, duration));
    }

    private EngineStatus CurrentStatus()
    {
        var cache = _scheduler.PrefixCache;
        var cached = cache?.ParkedSlots ?? 0;
        return new EngineStatus(
            Waiting: _scheduler.WaitingCount + _inbox.Count,
            Running: _scheduler.RunningCount,
            SlotsTotal: _pool.SlotCount,
            SlotsInUse: _pool.SlotCount - _pool.FreeSlots - cached,
            SlotsCached: cached,
            SlotCapacityTokens: _pool.SlotCapacity,
            KvTokensUsed: _pool.UsedTokens,
            KvBytesTotal: _pool.TotalBytes,
            Preemptions: _scheduler.Preemptions,
            PrefixLookups: cache?.Lookups ?? 0,
            PrefixHits: cache?.Hits ?? 0,
            PrefixHitTokens: cache?.HitTokens ?? 0,
            GeneratedTokens: _generatedTokens,
            PrefillChunks: _prefillChunks,
            PrefillRuns: _prefillRuns,
            KvTokenBudget: _pool.TokenBudget,
            KvTokensHeld: _pool.HeldTokens,
            KvBudgetBytes: _pool.BudgetBytes,
            PeakRunning: _peakRunning);
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Release();
        _thread.Join();
        _decoder.Dispose();
        _session.Dispose();
        _pool.Dispose();
        Metrics.Dispose();
        _wake.Dispose();
    }
}
