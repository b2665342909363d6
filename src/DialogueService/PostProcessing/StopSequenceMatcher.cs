namespace ChatServices.DialogueService.PostProcessing;

/// <summary>
/// Finds stop strings in streamed text that arrives in arbitrary pieces (a stop string may be split across
/// tokens, or across several deltas) without ever streaming text that is later retracted.
/// </summary>
/// <remarks>
/// Invariant: text is released only once it is known not to be the start of a stop string. The held-back
/// tail is the longest suffix of the unreleased text that is a proper prefix of some stop string, so at most
/// (longest stop string − 1) characters are ever held. Once a stop string is found, the text before it is
/// released, the stop string and everything after it are dropped, and every later <see cref="Push"/> returns
/// nothing. Not thread-safe: one matcher per generated choice.
/// </remarks>
public sealed class StopSequenceMatcher
{
    private readonly string[] _stops;
    private string _pending = "";

    public StopSequenceMatcher(IReadOnlyList<string> stops)
    {
        ArgumentNullException.ThrowIfNull(stops);
        foreach (var stop in stops)
            if (string.IsNullOrEmpty(stop)) throw new ArgumentException("Stop strings must not be empty.", nameof(stops));
        _stops = [.. stops];
    }

    /// <summary>True once a stop string has been seen; the generation should end.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The stop string that ended the text, if any.</summary>
    public string? MatchedStop { get; private set; }

    /// <summary>Adds newly decoded text; returns the text that is now safe to release (possibly empty).</summary>
    public string Push(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Stopped || text.Length == 0) return "";
        if (_stops.Length == 0) return text;

        var pending = _pending + text;
        var (at, stop) = FindEarliestStop(pending);
        if (stop is not null)
        {
            Stopped = true;
            MatchedStop = stop;
            _pending = "";
            return pending[..at];
        }

        var hold = LongestSuffixThatStartsAStop(pending);
        _pending = pending[(pending.Length - hold)..];
        return pending[..(pending.Length - hold)];
    }

    /// <summary>The generation ended for another reason: releases what was held back.</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }

    private (int At, string? Stop) FindEarliestStop(string text)
    {
        var best = -1;
        string? bestStop = null;
        foreach (var stop in _stops)
        {
            var at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best))
            {
                best = at;
                bestStop = stop;
            }
        }
        return (best, bestStop);
    }

    private int LongestSuffixThatStartsAStop(string text)
    {
        var longest = 0;
        foreach (var stop in _stops)
        {
            var max = Math.Min(stop.Length - 1, text.Length);
            for (var len = max; len > longest; len--)
            {
                if (text.AsSpan(text.Length - len).SequenceEqual(stop.AsSpan(0, len)))
                {
                    longest = len;
                    break;
                }
            }
        }
        return longest;
    }
}
