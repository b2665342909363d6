using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ChatServices.InferenceService.Engine.Constraints;
using FsCheck;
using FsCheck.Fluent;
using Json.Schema;
using static ChatServices.InferenceService.Tests.Constraints.ConstraintFixtures;

namespace ChatServices.InferenceService.Tests.Constraints;

public class ConstraintMatcherTests
{
    private static CompiledConstraint Compile(ConstraintSpec spec, TokenVocabulary? vocabulary = null) =>
        ConstraintCache.Compile(spec, vocabulary ?? Llama2);

    [Fact]
    public void Byte_fallback_vocabulary_reads_spaces_and_byte_tokens()
    {
        var v = Llama2;
        var byId = Enumerable.Range(0, v.Size).ToLookup(id => Encoding.UTF8.GetString(v.BytesOf(id)));
        Assert.Contains(13, byId["\n"]); // <0x0A>
        Assert.NotEmpty(byId[" the"]); // ▁the
        Assert.True(v.BytesOf(2).IsEmpty); // </s> is special: never allowed by a constraint
        Assert.Equal(256, Enumerable.Range(0, v.Size).Count(id => v.BytesOf(id).Length == 1 && v.BytesOf(id)[0] is var b && IsByteToken(id)));

        bool IsByteToken(int id) => id is >= 3 and < 259;
    }

    [Fact]
    public void Byte_level_vocabulary_maps_the_gpt2_table_and_drops_added_tokens()
    {
        foreach (var v in new[] { Qwen3, Llama3() })
        {
            var texts = Enumerable.Range(0, v.Size).Select(id => v.BytesOf(id).ToArray()).ToList();
            Assert.Contains(texts, t => t.AsSpan().SequenceEqual(" the"u8));
            Assert.Contains(texts, t => t.AsSpan().SequenceEqual("\n"u8));
            Assert.Equal(256, texts.Count(t => t.Length == 1));
            Assert.DoesNotContain(texts, t => Encoding.UTF8.GetString(t).Contains("<|im_end|>") || Encoding.UTF8.GetString(t).Contains("<|eot_id|>"));
            // Some tokens end in the middle of a code point: the matcher works on bytes.
            Assert.Contains(texts, t => t.Length > 0 && !IsValidUtf8(t));
        }
    }

    [Fact]
    public void Json_schema_language_holds_valid_instances_and_refuses_invalid_ones()
    {
        var c = Compile(new JsonSchemaConstraint(TestSchemas.Strict));
        const string valid = """{"name": "Ann \"A\"", "age": 120, "active": true, "role": "guest", "address": {"city": "Oslo", "zip": "01234"}, "tags": ["a", "b\n"], "contact": {"user": "x", "verified": false}, "score": -0.25}""";
        Assert.True(Accepts(c, valid));
        Assert.True(Accepts(c, valid.Replace("""{"user": "x", "verified": false}""", "null")));
        Assert.False(Accepts(c, valid.Replace("120", "121"))); // integer bound
        Assert.False(Accepts(c, valid.Replace("\"guest\"", "\"root\""))); // enum
        Assert.False(Accepts(c, valid.Replace("Ann \\\"A\\\"", "Ann Bob Carl Dee"))); // maxLength 12
        Assert.False(Accepts(c, valid.Replace("-0.25", "1.5"))); // number bound
        Assert.False(Accepts(c, valid.Replace("-0.25", "-1.5")));
        Assert.False(Accepts(c, valid.Replace(", \"age\"", ",\"age\""))); // separators are ", " and ": "
        Assert.False(IsPrefix(c, """{"name": "a"""+"\u0001")); // raw control character in a string
        Assert.False(IsPrefix(c, """{"name": "a\q""")); // bad escape
        Assert.False(IsPrefix(c, """{"name": "\ud800""")); // lone surrogate escape
        Assert.True(IsPrefix(c, """{"name": "é""")); // multi-byte characters
        Assert.False(Accepts(c, valid[..^1])); // incomplete
    }

    [Fact]
    public void Optional_properties_recursion_formats_and_exclusive_bounds_compile_to_the_right_language()
    {
        var c = Compile(new JsonSchemaConstraint(TestSchemas.Loose));
        Assert.True(Accepts(c, """{"kind": "node"}"""));
        Assert.True(Accepts(c, """{"id": "0123abcd-0000-4000-8000-00000000abcd", "kind": "node", "weight": -4, "children": [{"kind": "node", "children": []}], "label": null}"""));
        Assert.True(Accepts(c, """{"kind": "node", "when": "2026-12-04", "label": "abcd"}"""));
        Assert.False(Accepts(c, """{"kind": "node", "weight": -5}"""));
        Assert.False(Accepts(c, """{"kind": "node", "weight": 1000}"""));
        Assert.False(Accepts(c, """{"kind": "node", "when": "2026-13-04"}"""));
        Assert.False(Accepts(c, """{"id": "x", "kind": "node"}"""));
        Assert.False(Accepts(c, """{"weight": 3}""")); // kind is required
        Assert.False(Accepts(c, """{"kind": "node", "children": [{"kind": "node"}, {"kind": "node"}, {"kind": "node"}]}"""));
    }

    /// <summary>
    /// Property: on random reachable states of several constraints, over a 32k byte-fallback and a 151k byte-level
    /// vocabulary, the mask (token trie walk, memoized per state) allows exactly the tokens whose bytes, appended one
    /// by one, keep the output a valid prefix.
    /// </summary>
    [Fact]
    public void Mask_agrees_with_a_token_by_token_check_on_random_states()
    {
        var constraints = new List<CompiledConstraint>();
        foreach (var v in new[] { Llama2, Qwen3 })
        {
            constraints.Add(Compile(new JsonSchemaConstraint(TestSchemas.Strict), v));
            constraints.Add(Compile(new RegexConstraint(@"(\d{1,3}\.){3}\d{1,3}|[a-zé]+@[a-z]+\.(com|org)|[^\n]{0,5}"), v));
            constraints.Add(Compile(new GrammarConstraint(TestSchemas.ToolCallGbnf, new Dictionary<string, string> { ["call"] = TestSchemas.ToolCallSchema }), v));
        }
        var property = Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), Gen.Choose(0, constraints.Count - 1).ToArbitrary(), (seed, which) =>
        {
            var c = constraints[which];
            var rng = new Random(seed);
            var (states, _, _) = RandomWalk(c, rng, maxTokens: 12, endChance: 0.1);
            var state = states[rng.Next(states.Count)];
            var mask = c.MaskOf(state, out var canExtend);
            var any = false;
            for (var id = 0; id < c.Vocabulary.Size; id++)
            {
                var expected = !c.Vocabulary.BytesOf(id).IsEmpty && !c.Advance(state, id).IsDead;
                var actual = (mask[id >> 6] & (1UL << (id & 63))) != 0;
                if (expected != actual) return false;
                any |= expected;
            }
            return any == canExtend;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(40), property);
    }

    [Fact]
    public void Random_walks_under_a_json_schema_give_instances_that_validate()
    {
        var schema = JsonSchema.FromText(TestSchemas.Loose);
        foreach (var v in new[] { Llama2, Qwen3 })
        {
            var c = Compile(new JsonSchemaConstraint(TestSchemas.Loose), v);
            for (var seed = 0; seed < 30; seed++)
            {
                var (_, bytes, complete) = RandomWalk(c, new Random(seed), maxTokens: 400, endChance: 0.9);
                Assert.True(complete, $"seed {seed}: walk did not finish: {Encoding.UTF8.GetString(bytes)}");
                Assert.True(IsValidUtf8(bytes));
                var result = schema.Evaluate(JsonDocument.Parse(bytes).RootElement);
                Assert.True(result.IsValid, Encoding.UTF8.GetString(bytes));
            }
        }
    }

    [Fact]
    public void Random_walks_under_a_regex_match_it_in_full()
    {
        const string pattern = @"(\d{1,3}\.){3}\d{1,3}|[a-zé]+@[a-z]+\.(com|org)|[^\n]{0,5}";
        // .NET counts UTF-16 units where the constraint counts code points: the reference spells a code point out.
        var reference = new Regex(@"^(?:(\d{1,3}\.){3}\d{1,3}|[a-zé]+@[a-z]+\.(com|org)|(?:[^\n\uD800-\uDFFF]|[\uD800-\uDBFF][\uDC00-\uDFFF]){0,5})$");
        foreach (var v in new[] { Llama2, Qwen3 })
        {
            var c = Compile(new RegexConstraint(pattern), v);
            for (var seed = 0; seed < 40; seed++)
            {
                var (_, bytes, complete) = RandomWalk(c, new Random(seed), maxTokens: 60, endChance: 0.3);
                Assert.True(complete);
                Assert.Matches(reference, Encoding.UTF8.GetString(bytes));
            }
        }
        var strict = Compile(new RegexConstraint("^[A-Z][a-z]{2,4}-?\\d+$"));
        Assert.True(Accepts(strict, "Abc-12"));
        Assert.True(Accepts(strict, "Abcde7"));
        Assert.False(Accepts(strict, "Ab-1"));
        Assert.False(Accepts(strict, "Abc-"));
    }

    [Fact]
    public void Gbnf_with_a_json_schema_rule_gives_tool_calls_that_parse_and_validate()
    {
        var schema = JsonSchema.FromText(TestSchemas.ToolCallSchema);
        var c = Compile(new GrammarConstraint(TestSchemas.ToolCallGbnf + "# a comment\n", new Dictionary<string, string> { ["call"] = TestSchemas.ToolCallSchema }), Qwen3);
        for (var seed = 0; seed < 20; seed++)
        {
            var (_, bytes, complete) = RandomWalk(c, new Random(seed), maxTokens: 200, endChance: 1);
            Assert.True(complete);
            var text = Encoding.UTF8.GetString(bytes);
            Assert.StartsWith("<tool_call>\n", text);
            Assert.EndsWith("\n</tool_call>", text);
            var json = text["<tool_call>\n".Length..^"\n</tool_call>".Length];
            Assert.True(schema.Evaluate(JsonDocument.Parse(json).RootElement).IsValid, json);
        }
    }

    [Fact]
    public void Gbnf_supports_classes_repetition_alternation_and_multi_line_rules()
    {
        const string gbnf = """
            # a list of one to three items
            root ::= "[" item ("," item){0,2} "]"
            item ::= number
                   | word
            number ::= "-"? [1-9] [0-9]*
            word ::= [a-zA-Z_] [^\x00-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]*
            """;
        var c = Compile(new GrammarConstraint(gbnf, new Dictionary<string, string>()));
        Assert.True(Accepts(c, "[12,-3,abc]"));
        Assert.True(Accepts(c, "[_xé9]")); // [a-zA-Z_], then letters, digits and non-ASCII
        Assert.False(Accepts(c, "[xé_]"));
        Assert.False(Accepts(c, "[1,2,3,4]"));
        Assert.False(Accepts(c, "[01]"));
        Assert.False(Accepts(c, "[a b]"));
    }

    [Fact]
    public void Json_object_allows_any_object_and_only_objects()
    {
        var c = Compile(new InferenceService.Engine.Constraints.JsonObjectConstraint());
        Assert.True(Accepts(c, """{"a": [1, 2.5e3, {"b": null}], "c": "d"}"""));
        Assert.True(Accepts(c, "{}"));
        Assert.False(IsPrefix(c, "["));
        Assert.False(IsPrefix(c, "\"x\""));
    }

    [Fact]
    public void A_complete_output_with_no_continuation_allows_only_end_tokens()
    {
        var c = Compile(new RegexConstraint("ok"));
        var matcher = c.NewMatcher();
        foreach (var id in Enumerable.Range(0, c.Vocabulary.Size).Where(id => Encoding.UTF8.GetString(c.Vocabulary.BytesOf(id)) == "ok").Take(1))
            Assert.True(matcher.Accept(id));
        Assert.True(matcher.IsComplete);
        var logits = Enumerable.Range(0, c.Vocabulary.Size).Select(i => (float)(i % 7)).ToArray();
        var masked = new float[logits.Length];
        matcher.MaskLogits(logits, masked, [2]);
        Assert.Equal([2], Enumerable.Range(0, masked.Length).Where(i => !float.IsNegativeInfinity(masked[i])));
    }

    [Theory]
    [InlineData("""{"type": "object", "patternProperties": {"^a": {}}}""", "constraint.json_schema: keyword 'patternProperties' is not supported.")]
    [InlineData("""{"type": "object", "properties": {"a": {"type": "string", "minLength": 1, "contentEncoding": "base64"}}}""", "constraint.json_schema: keyword 'contentEncoding' is not supported (at #/properties/a).")]
    [InlineData("""{"type": "array", "uniqueItems": true}""", "constraint.json_schema: keyword 'uniqueItems' is not supported.")]
    [InlineData("""{"allOf": [{"type": "string"}, {"maxLength": 3}]}""", "constraint.json_schema: keyword 'allOf' is not supported with more than one schema.")]
    [InlineData("""{"type": "string", "format": "hostname"}""", "constraint.json_schema: format 'hostname' is not supported (date-time, date, time, uuid, email are).")]
    [InlineData("""{"$ref": "https://example.com/s.json"}""", "constraint.json_schema: $ref 'https://example.com/s.json' is not supported (only references into this document, like '#/$defs/name').")]
    public void Unsupported_schema_features_are_named(string schema, string message)
    {
        var e = Assert.Throws<ConstraintException>(() => Compile(new JsonSchemaConstraint(schema)));
        Assert.Equal(message, $"{e.Field}: {e.Message}");
    }

    [Theory]
    [InlineData("json", """{"type": "object",}""", "constraint.json_schema: not valid JSON: ")]
    [InlineData("regex", "ab(c", "constraint.regex: unclosed '(' at position 2.")]
    [InlineData("regex", "(a)\\1", "constraint.regex: backreferences are not supported at position 3.")]
    [InlineData("regex", "a(?=b)", "constraint.regex: look-around and inline flags are not supported at position 1.")]
    [InlineData("gbnf", "root ::= \"a\" (b\nb ::= \"x\"", "constraint.grammar.gbnf: unclosed '(' at line 1, column 14.")]
    [InlineData("gbnf", "root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"", "constraint.grammar: rule 'expr' is left-recursive")]
    [InlineData("gbnf", "root ::= missing", "constraint.grammar: rule 'missing' is not defined.")]
    [InlineData("gbnf", "start ::= \"a\"", "constraint.grammar: rule 'root' is not defined.")]
    [InlineData("schema", """{"type": "object", "properties": {"a": {}}, "required": "a"}""", "constraint.json_schema: a keyword has a value of the wrong type: ")]
    public void Syntax_errors_give_the_position(string kind, string text, string messageStart)
    {
        ConstraintSpec spec = kind switch
        {
            "json" or "schema" => new JsonSchemaConstraint(text),
            "regex" => new RegexConstraint(text),
            _ => new GrammarConstraint(text, new Dictionary<string, string>()),
        };
        var e = Assert.Throws<ConstraintException>(() => Compile(spec));
        Assert.StartsWith(messageStart, $"{e.Field}: {e.Message}");
        if (kind == "json") Assert.Contains("LineNumber: 0 | BytePositionInLine: 18", e.Message);
    }

    [Fact]
    public void Deeply_nested_groups_are_refused_rather_than_overflowing_the_stack()
    {
        var regex = Assert.Throws<ConstraintException>(() => Compile(new RegexConstraint(new string('(', 5000) + "a" + new string(')', 5000))));
        Assert.StartsWith("groups nest deeper than 100 at position ", regex.Message);
        var gbnf = Assert.Throws<ConstraintException>(() => Compile(new GrammarConstraint("root ::= " + new string('(', 5000) + "\"a\"" + new string(')', 5000), new Dictionary<string, string>())));
        Assert.StartsWith("groups nest deeper than 100 at line 1", gbnf.Message);
    }

    [Fact]
    public void The_cache_compiles_each_distinct_constraint_once()
    {
        var cache = new ConstraintCache(() => Llama2, capacity: 2);
        var a = cache.Get(new JsonSchemaConstraint(TestSchemas.Strict));
        Assert.Same(a, cache.Get(new JsonSchemaConstraint(TestSchemas.Strict)));
        cache.Get(new RegexConstraint("a"));
        cache.Get(new RegexConstraint("b")); // evicts the least recently used: the schema
        Assert.NotSame(a, cache.Get(new JsonSchemaConstraint(TestSchemas.Strict)));
        Assert.Equal((1L, 4L), (cache.Hits, cache.Misses));
    }

    private static bool IsValidUtf8(byte[] bytes)
    {
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}
