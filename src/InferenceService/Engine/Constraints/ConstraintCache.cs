using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// Compiles constraints for one vocabulary, once per distinct constraint: compiled constraints are kept by the
/// SHA-256 of their content in a least-recently-used cache of <see cref="Capacity"/> entries, so a schema sent with
/// every request (a tool definition, a response format) compiles once and keeps its memoized masks. Thread-safe:
/// requests compile on their own threads; two racing compiles of one constraint keep the first.
/// </summary>
public sealed class ConstraintCache
{
    private readonly Lazy<TokenVocabulary> _vocabulary;
    private readonly Dictionary<string, LinkedListNode<(string Key, CompiledConstraint Value)>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, CompiledConstraint Value)> _recency = new();
    private readonly Lock _lock = new();
    private readonly Histogram<double>? _compileSeconds;
    private readonly Counter<long>? _lookups;

    public ConstraintCache(Func<TokenVocabulary> vocabulary, int capacity = 64, Meter? meter = null)
    {
        _vocabulary = new Lazy<TokenVocabulary>(vocabulary, LazyThreadSafetyMode.ExecutionAndPublication);
        Capacity = capacity;
        _compileSeconds = meter?.CreateHistogram<double>("chatservices.inference.constraint.compile.duration", "s",
            "Time to compile a constraint (JSON Schema, regular expression or grammar) that was not cached.");
        _lookups = meter?.CreateCounter<long>("chatservices.inference.constraint.lookups", "{lookup}",
            "Constraint compile-cache lookups, tagged hit=true|false.");
    }

    public int Capacity { get; }
    public long Hits { get; private set; }
    public long Misses { get; private set; }

    public TokenVocabulary Vocabulary => _vocabulary.Value;

    /// <summary>The compiled constraint; throws <see cref="ConstraintException"/> when it cannot be compiled.</summary>
    public CompiledConstraint Get(ConstraintSpec spec)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(spec.CacheKey)));
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _recency.Remove(node);
                _recency.AddFirst(node);
                Hits++;
                _lookups?.Add(1, new KeyValuePair<string, object?>("hit", true));
                return node.Value.Value;
            }
        }
        var started = Stopwatch.GetTimestamp();
        var automaton = new ByteAutomaton(ToGrammar(spec), spec.Field); // the constraint's own errors come first
        var compiled = new CompiledConstraint(automaton, Vocabulary);
        _compileSeconds?.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        _lookups?.Add(1, new KeyValuePair<string, object?>("hit", false));
        lock (_lock)
        {
            Misses++;
            if (_entries.TryGetValue(key, out var raced)) return raced.Value.Value;
            _entries[key] = _recency.AddFirst((key, compiled));
            while (_entries.Count > Capacity)
            {
                _entries.Remove(_recency.Last!.Value.Key);
                _recency.RemoveLast();
            }
        }
        return compiled;
    }

    /// <summary>Compiles without caching (benchmarks, tests).</summary>
    public static CompiledConstraint Compile(ConstraintSpec spec, TokenVocabulary vocabulary) =>
        new(new ByteAutomaton(ToGrammar(spec), spec.Field), vocabulary);

    /// <summary>The one grammar representation of any constraint kind.</summary>
    public static Grammar ToGrammar(ConstraintSpec spec)
    {
        switch (spec)
        {
            case JsonSchemaConstraint j:
                return JsonSchemaCompiler.Compile(j.Schema, j.Field);
            case JsonObjectConstraint:
                return JsonSchemaCompiler.AnyObject();
            case RegexConstraint r:
            {
                var grammar = new Grammar();
                grammar.Rules["root"] = RegexParser.Parse(r.Pattern, r.Field, CharacterEncoding.Utf8);
                return grammar;
            }
            case GrammarConstraint g:
            {
                var grammar = new Grammar();
                foreach (var (name, schema) in g.JsonSchemaRules)
                {
                    var field = $"constraint.grammar.json_schema_rules[{name}]";
                    if (!GbnfParser.IsRuleName(name)) throw new ConstraintException(field, "a rule name is letters, digits, '-' and '_'.");
                    JsonSchemaCompiler.AddRule(grammar, name, schema, field);
                }
                GbnfParser.AddRules(g.Gbnf, grammar);
                return grammar;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(spec));
        }
    }
}
