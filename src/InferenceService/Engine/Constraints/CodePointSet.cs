using System.Text;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// A set of Unicode scalar values (code points without the surrogates) as sorted, disjoint, non-adjacent ranges,
/// and its translation to a grammar over UTF-8 bytes: each range splits into byte-range sequences, so a token
/// that ends in the middle of a code point is matched byte by byte and only well-formed UTF-8 is accepted.
/// </summary>
public sealed class CodePointSet
{
    public const int MaxCodePoint = 0x10FFFF;
    private readonly List<(int Lo, int Hi)> _ranges = [];

    public IReadOnlyList<(int Lo, int Hi)> Ranges => _ranges;

    public static CodePointSet Of(params (int Lo, int Hi)[] ranges)
    {
        var set = new CodePointSet();
        foreach (var (lo, hi) in ranges) set.Add(lo, hi);
        return set;
    }

    public static CodePointSet All => Of((0, MaxCodePoint));

    public bool IsEmpty => _ranges.Count == 0;

    public bool Contains(int cp)
    {
        foreach (var (lo, hi) in _ranges) if (cp >= lo && cp <= hi) return true;
        return false;
    }

    /// <summary>Adds [lo, hi], leaving out the surrogates.</summary>
    public CodePointSet Add(int lo, int hi)
    {
        if (lo <= 0xDFFF && hi >= 0xD800)
        {
            if (lo < 0xD800) Insert(lo, 0xD7FF);
            if (hi > 0xDFFF) Insert(0xE000, hi);
            return this;
        }
        Insert(lo, hi);
        return this;
    }

    public CodePointSet AddAll(CodePointSet other)
    {
        foreach (var (lo, hi) in other._ranges) Insert(lo, hi);
        return this;
    }

    public CodePointSet Complement()
    {
        var result = new CodePointSet();
        var next = 0;
        foreach (var (lo, hi) in _ranges)
        {
            if (lo > next) result.Add(next, lo - 1);
            next = hi + 1;
        }
        if (next <= MaxCodePoint) result.Add(next, MaxCodePoint);
        return result;
    }

    public CodePointSet Without(CodePointSet other) => Complement().AddAll(other).Complement();

    private void Insert(int lo, int hi)
    {
        if (lo > hi) return;
        var merged = new List<(int, int)>(_ranges.Count + 1);
        var placed = false;
        foreach (var (a, b) in _ranges)
        {
            if (b + 1 < lo) merged.Add((a, b));
            else if (hi + 1 < a)
            {
                if (!placed) { merged.Add((lo, hi)); placed = true; }
                merged.Add((a, b));
            }
            else { lo = Math.Min(lo, a); hi = Math.Max(hi, b); }
        }
        if (!placed) merged.Add((lo, hi));
        _ranges.Clear();
        _ranges.AddRange(merged);
    }

    /// <summary>One code point of the set, as UTF-8 bytes.</summary>
    public GrammarNode ToUtf8()
    {
        var alternatives = new List<GrammarNode>();
        foreach (var (lo, hi) in _ranges) Split(lo, hi, alternatives);
        return alternatives.Count == 0 ? new ByteNode(default) : GrammarNode.Alt([.. alternatives]);
    }

    private static readonly int[] LengthLimits = [0x7F, 0x7FF, 0xFFFF, MaxCodePoint];

    private static void Split(int lo, int hi, List<GrammarNode> into)
    {
        foreach (var limit in LengthLimits)
            if (lo <= limit && hi > limit)
            {
                Split(lo, limit, into);
                Split(limit + 1, hi, into);
                return;
            }
        var length = lo <= 0x7F ? 1 : lo <= 0x7FF ? 2 : lo <= 0xFFFF ? 3 : 4;
        for (var i = 1; i < length; i++)
        {
            var m = (1 << (6 * i)) - 1;
            if ((lo & ~m) == (hi & ~m)) continue;
            if ((lo & m) != 0)
            {
                Split(lo, lo | m, into);
                Split((lo | m) + 1, hi, into);
                return;
            }
            if ((hi & m) != m)
            {
                Split(lo, (hi & ~m) - 1, into);
                Split(hi & ~m, hi, into);
                return;
            }
        }
        Span<byte> a = stackalloc byte[4], b = stackalloc byte[4];
        new Rune(lo).EncodeToUtf8(a);
        new Rune(hi).EncodeToUtf8(b);
        var items = new GrammarNode[length];
        for (var k = 0; k < length; k++) items[k] = new ByteNode(ByteSet.Range(a[k], b[k]));
        into.Add(GrammarNode.Seq(items));
    }
}
