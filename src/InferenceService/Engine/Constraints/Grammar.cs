using System.Text;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>A set of byte values (256 bits): the label of one byte transition.</summary>
public readonly record struct ByteSet(ulong W0, ulong W1, ulong W2, ulong W3)
{
    public static ByteSet Range(int lo, int hi)
    {
        ulong w0 = 0, w1 = 0, w2 = 0, w3 = 0;
        for (var b = lo; b <= hi; b++)
        {
            var bit = 1UL << (b & 63);
            switch (b >> 6) { case 0: w0 |= bit; break; case 1: w1 |= bit; break; case 2: w2 |= bit; break; default: w3 |= bit; break; }
        }
        return new ByteSet(w0, w1, w2, w3);
    }

    public static ByteSet Of(byte b) => Range(b, b);

    public bool Contains(byte b) => ((b >> 6) switch { 0 => W0, 1 => W1, 2 => W2, _ => W3 } & (1UL << (b & 63))) != 0;

    public bool IsEmpty => (W0 | W1 | W2 | W3) == 0;

    public ByteSet Union(ByteSet o) => new(W0 | o.W0, W1 | o.W1, W2 | o.W2, W3 | o.W3);
}

/// <summary>
/// A node of the one grammar representation every constraint compiles to: a context-free grammar over bytes.
/// Repetition and alternation stay structured (they become loops in a rule's automaton); recursion goes through
/// named rules (<see cref="RuleRef"/>).
/// </summary>
public abstract record GrammarNode
{
    public static readonly GrammarNode Empty = new SeqNode([]);

    /// <summary>The UTF-8 bytes of <paramref name="text"/>, in order.</summary>
    public static GrammarNode Literal(string text) => Bytes(Encoding.UTF8.GetBytes(text));

    public static GrammarNode Bytes(ReadOnlySpan<byte> bytes)
    {
        var items = new GrammarNode[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) items[i] = new ByteNode(ByteSet.Of(bytes[i]));
        return items.Length == 1 ? items[0] : new SeqNode(items);
    }

    public static GrammarNode Seq(params GrammarNode[] items) => items.Length == 1 ? items[0] : new SeqNode(items);
    public static GrammarNode Alt(params GrammarNode[] items) => items.Length == 1 ? items[0] : new AltNode(items);
    public static GrammarNode Optional(GrammarNode item) => new RepeatNode(item, 0, 1);
    public static GrammarNode Star(GrammarNode item) => new RepeatNode(item, 0, RepeatNode.Unbounded);
}

/// <summary>One byte out of a set.</summary>
public sealed record ByteNode(ByteSet Set) : GrammarNode;

/// <summary>The items one after the other (none: the empty string).</summary>
public sealed record SeqNode(GrammarNode[] Items) : GrammarNode;

/// <summary>Any one of the items.</summary>
public sealed record AltNode(GrammarNode[] Items) : GrammarNode;

/// <summary>The item Min to Max times (<see cref="Unbounded"/>: no upper limit).</summary>
public sealed record RepeatNode(GrammarNode Item, int Min, int Max) : GrammarNode
{
    public const int Unbounded = -1;
}

/// <summary>The language of a named rule of the same grammar.</summary>
public sealed record RuleRef(string Name) : GrammarNode;

/// <summary>
/// A context-free grammar over bytes: named rules and the start rule. Built by the compilers of each constraint
/// kind (<see cref="JsonSchemaCompiler"/>, <see cref="RegexParser"/>, <see cref="GbnfParser"/>).
/// </summary>
public sealed class Grammar
{
    private int _fresh;

    public Dictionary<string, GrammarNode> Rules { get; } = new(StringComparer.Ordinal);
    public string Root { get; set; } = "root";

    /// <summary>Adds a rule under a new name that starts with <paramref name="hint"/>, and returns a reference to it.</summary>
    public RuleRef AddRule(string hint, GrammarNode body)
    {
        var name = $"{hint}#{++_fresh}";
        Rules[name] = body;
        return new RuleRef(name);
    }

    /// <summary>Reserves a fresh rule name (for recursive rules whose body refers to themselves).</summary>
    public string FreshName(string hint) => $"{hint}#{++_fresh}";
}
