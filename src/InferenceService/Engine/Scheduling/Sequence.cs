using ChatServices.InferenceService.Engine.Constraints;
using ChatServices.InferenceService.Engine.KvCache;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Engine.Scheduling;

/// <summary>
/// One sequence being generated: its tokens (prompt then output), the KV slot that holds their KV while it runs,
/// and its sampling state. Invariant: <c>Slot.Tokens</c> is a prefix of <see cref="Tokens"/>; the tokens after it
/// (<see cref="Pending"/>) are fed at the next steps, one chunk at a time while prefilling, one token while decoding.
/// </summary>
public sealed class Sequence
{
    public Sequence(GenerationJob job, int index, List<int> tokens, int promptLength, SeededRandom rng)
    {
        Job = job;
        Index = index;
        Tokens = tokens;
        PromptLength = promptLength;
        Rng = rng;
        History = job.Request.Sampling.HasPenalties ? new TokenHistory(job.Request.PromptTokenIds) : null;
        Matcher = job.Constraint?.NewMatcher();
    }

    public GenerationJob Job { get; }

    /// <summary>Index within the request (0..n-1, or the beam index).</summary>
    public int Index { get; set; }

    public List<int> Tokens { get; }
    public int PromptLength { get; }
    public KvSlot? Slot { get; set; }
    public SeededRandom Rng { get; }
    public TokenHistory? History { get; set; }
    public double CumulativeLogprob { get; set; }
    public FinishReason? FinishReason { get; set; }

    /// <summary>Where the output stands in the request's constraint (null without one). Kept across preemption.</summary>
    public ConstraintMatcher? Matcher { get; set; }

    /// <summary>Order of arrival of the request: lower is older. Preemption takes the newest.</summary>
    public long Arrival => Job.Arrival;

    public int Computed => Slot?.Length ?? 0;

    /// <summary>Tokens whose KV is not yet computed (1 while decoding).</summary>
    public int Pending => Tokens.Count - Computed;

    public int Generated => Tokens.Count - PromptLength;

    public bool IsFinished => FinishReason is not null;
}
