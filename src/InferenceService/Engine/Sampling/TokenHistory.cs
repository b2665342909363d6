namespace ChatServices.InferenceService.Engine.Sampling;

/// <summary>
/// What the penalties need to know about a sequence: which tokens appeared in the prompt or output (repetition
/// penalty) and how often each was generated (presence and frequency penalties). Kept only when a penalty is on.
/// </summary>
public sealed class TokenHistory
{
    private readonly HashSet<int> _seen = [];
    private readonly Dictionary<int, int> _generated = [];

    public TokenHistory(ReadOnlySpan<int> prompt)
    {
        foreach (var t in prompt) _seen.Add(t);
    }

    public IReadOnlySet<int> Seen => _seen;
    public IReadOnlyDictionary<int, int> GeneratedCounts => _generated;

    public void AddGenerated(int token)
    {
        _seen.Add(token);
        _generated[token] = _generated.TryGetValue(token, out var c) ? c + 1 : 1;
    }
}
