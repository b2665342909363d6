using System.Diagnostics;
using System.Threading.Channels;
using ChatServices.InferenceService.Engine.BeamSearch;
using ChatServices.InferenceService.Engine.Constraints;
using ChatServices.InferenceService.Engine.KvCache;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Engine.Scheduling;

/// <summary>
/// The engine's state for one request: its sequences (one, n samples or the beams), the events streamed back, and
/// timing. A request of width w (n samples or w beams) computes its prompt once in its first sequence, the
/// leader, then forks: the other sequences start from a copy of the leader's prompt KV. Beams advance in lockstep,
/// so a beam request reserves all its slots when admitted; samples take slots when they fork (preempting newer
/// requests if need be) or, failing that, wait in the queue and copy the prompt's KV when admitted.
/// </summary>
public sealed class GenerationJob
{
    private static readonly UnboundedChannelOptions ChannelOptions = new() { SingleReader = true, SingleWriter = true };

    public GenerationJob(GenerationRequest request, long arrival, int maxNewTokens, CancellationToken cancellation)
    {
        Request = request;
        Arrival = arrival;
        MaxNewTokens = maxNewTokens;
        Cancellation = cancellation;
        Width = request.BeamSearch?.NumBeams ?? request.N;
        var seed = request.Sampling.Seed;
        var leader = new Sequence(this, 0, [.. request.PromptTokenIds], request.PromptTokenIds.Length,
            seed is { } s ? new SeededRandom(SeededRandom.Derive(s, 0)) : SeededRandom.FromEntropy());
        Sequences.Add(leader);
        if (request.BeamSearch is { } beam) Beam = new BeamSearchState(beam, request.PromptTokenIds.Length, maxNewTokens);
    }

    public GenerationRequest Request { get; }
    public long Arrival { get; }
    public int MaxNewTokens { get; }
    public CancellationToken Cancellation { get; }
    public int Width { get; }
    public Channel<GenerationEvent> Events { get; } = Channel.CreateUnbounded<GenerationEvent>(ChannelOptions);
    public List<Sequence> Sequences { get; } = [];
    public Sequence Leader => Sequences[0];
    public BeamSearchState? Beam { get; }

    /// <summary>The request's compiled constraint (null without one); each sequence gets its own matcher.</summary>
    public CompiledConstraint? Constraint
    {
        get;
        init
        {
            field = value;
            Leader.Matcher = value?.NewMatcher();
        }
    }

    /// <summary>Tokens that end a sequence (end-of-sequence ids unless ignored, and stop ids): a constraint allows them where complete.</summary>
    public int[] EndTokens { get; init; } = [];

    /// <summary>Slots held for the sequences the leader forks into once its prompt is computed.</summary>
    public List<KvSlot> ReservedSlots { get; } = [];

    public bool Forked { get; set; }

    /// <summary>Prompt tokens whose KV came from the prefix cache instead of being computed.</summary>
    public int CachedPromptTokens { get; set; }

    public bool Admitted { get; set; }

    /// <summary>Whether the request no longer counts against the waiting-queue limit.</summary>
    public bool LeftQueue { get; set; }
    public long StartTimestamp { get; } = Stopwatch.GetTimestamp();
    /// <summary>When the request was first admitted to the running batch (its queueing ended); 0 before.</summary>
    public long AdmittedTimestamp { get; set; }
    public long FirstTokenTimestamp { get; set; }
    /// <summary>When a step last gave this request tokens (the inter-token latency's start); 0 before the first.</summary>
    public long LastTokenTimestamp { get; set; }

    /// <summary>Tokens of the current step, published as one <see cref="TokensGenerated"/> event.</summary>
    public List<GeneratedToken> StepTokens { get; } = [];

    /// <summary>Slots a sequence needs when admitted: a beam leader that has not forked reserves one per beam.</summary>
    public int SlotsNeededBy(Sequence s) => s.Index == 0 && !Forked && Beam is not null ? Width : 1;

    public bool IsFinished => Beam?.IsDone ?? Sequences.TrueForAll(s => s.IsFinished);
}
