using System.Text.Json.Nodes;
using ChatServices.DialogueService.Templates;

namespace ChatServices.DialogueService.Tests.Templates;

/// <summary>Behaviour of the template engine itself: error reporting, runaway guards, the public API.</summary>
public sealed class ChatTemplateTests
{
    private static ChatTemplateContext Conversation(params ChatMessage[] messages) => new() { Messages = messages, AddGenerationPrompt = true };

    private static string Render(string source, TemplateLimits? limits = null) =>
        ChatTemplate.Parse(source).Render(Conversation(ChatMessage.User("hi")), limits);

    /// <summary>
    /// Runs each action on a thread with a 1 MiB stack, smaller than a request thread's, and returns what
    /// each threw, proving the depth guards fire before the stack runs out.
    /// </summary>
    private static List<Exception?> OnSmallStack(params Action[] actions)
    {
        var outcomes = new List<Exception?>();
        var thread = new Thread(() =>
        {
            foreach (var action in actions)
            {
                try
                {
                    action();
                    outcomes.Add(null);
                }
                catch (Exception e)
                {
                    outcomes.Add(e);
                }
            }
        }, maxStackSize: 1 << 20);
        thread.Start();
        thread.Join();
        return outcomes;
    }

    [Fact]
    public void Syntax_error_reports_line_and_column_of_the_offending_token()
    {
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.Parse("first line\n{% if true %}\n  {{ 1 + }}\n{% endif %}"));
        Assert.Equal(3, error.Line);
        Assert.Equal(10, error.Column);
        Assert.Contains("line 3, column 10", error.Message);
    }

    [Fact]
    public void Unclosed_block_names_the_missing_end_tag()
    {
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.Parse("{% for m in messages %}\n{{ m.content }}"));
        Assert.Contains("endfor", error.Message);
        Assert.Equal(2, error.Line);
    }

    [Fact]
    public void Positions_survive_whitespace_control_and_block_trimming()
    {
        // lstrip_blocks and trim_blocks rewrite the text before lexing; positions must still be the author's.
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.Parse("a\n    {%- if true -%}\n\n  {% bogus %}\n{% endif %}"));
        Assert.Equal(4, error.Line);
        Assert.Equal(6, error.Column);
    }

    [Fact]
    public void Calling_an_undefined_method_fails_with_the_line_of_the_call()
    {
        var template = ChatTemplate.Parse("{% for m in messages %}\n{{ m.content.shout() }}\n{% endfor %}");
        var error = Assert.Throws<TemplateException>(() => template.Render(Conversation(ChatMessage.User("hi"))));
        Assert.Contains("shout", error.Message);
        Assert.Equal(2, error.Line);
        Assert.False(error.RaisedByTemplate);
    }

    [Fact]
    public void Raise_exception_surfaces_the_templates_own_message()
    {
        var template = ChatTemplate.Parse("{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a user turn') }}{% endif %}ok");
        var error = Assert.Throws<TemplateException>(() => template.Render(Conversation(ChatMessage.Assistant("hello"))));
        Assert.True(error.RaisedByTemplate);
        Assert.Equal("Conversation must start with a user turn", error.Reason);
        Assert.Equal("ok", template.Render(Conversation(ChatMessage.User("hello"))));
    }

    [Fact]
    public void Nested_loops_beyond_the_step_budget_are_stopped()
    {
        const string source = "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}";
        var error = Assert.Throws<TemplateException>(() => Render(source, TemplateLimits.Default with { MaxSteps = 100_000 }));
        Assert.Contains("100000", error.Message);
    }

    [Fact]
    public void Output_beyond_the_size_limit_is_refused()
    {
        var limits = TemplateLimits.Default with { MaxStringLength = 10_000 };
        Assert.Equal(5_000, Render("{% for i in range(500) %}0123456789{% endfor %}", limits).Length);
        var error = Assert.Throws<TemplateException>(() => Render("{% for i in range(5000) %}0123456789{% endfor %}", limits));
        Assert.Contains("10000", error.Message);
    }

    [Fact]
    public void Doubling_a_string_in_a_loop_is_refused_before_it_grows_large()
    {
        const string source = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}";
        var error = Assert.Throws<TemplateException>(() => Render(source, TemplateLimits.Default with { MaxStringLength = 1 << 20 }));
        Assert.Contains("String exceeds", error.Message);
    }

    [Fact]
    public void Huge_range_is_refused_without_allocating_it()
    {
        var error = Assert.Throws<TemplateException>(() => Render("{{ range(1000000000) | length }}"));
        Assert.Contains("range()", error.Message);
    }

    [Fact]
    public void Unbounded_macro_recursion_fails_cleanly_on_a_small_stack()
    {
        var outcome = Assert.Single(OnSmallStack(() => Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")));
        Assert.Contains("nested deeper", Assert.IsType<TemplateException>(outcome).Message);
    }

    [Fact]
    public void Deeply_nested_expressions_and_values_fail_cleanly_on_a_small_stack()
    {
        var outcomes = OnSmallStack(
            () => Render("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}"),
            () => Render("{{ " + new string('[', 5000) + new string(']', 5000) + " }}"),
            () => Render("{{ " + string.Concat(Enumerable.Repeat("not ", 5000)) + "true }}"),
            () => Render("{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | tojson }}"));
        Assert.All(outcomes, e => Assert.IsType<TemplateException>(e));
    }

    [Fact]
    public void Long_chains_of_calls_and_elifs_fail_cleanly_on_a_small_stack()
    {
        var outcomes = OnSmallStack(
            () => ChatTemplate.Parse("{{ range" + string.Concat(Enumerable.Repeat("()", 20_000)) + " }}"),
            () => ChatTemplate.Parse("{% if false %}" + string.Concat(Enumerable.Repeat("{% elif false %}", 20_000)) + "{% endif %}"));
        Assert.All(outcomes, e => Assert.Contains("nesting", Assert.IsType<TemplateException>(e).Message));
    }

    [Fact]
    public void Long_whitespace_runs_parse_in_linear_time()
    {
        // The generation-tag rewrite must not rescan whitespace quadratically (that would be ~10^10 steps here).
        var spaces = new string(' ', 200_000);
        var template = ChatTemplate.Parse(spaces + "x" + spaces + "{% generation %}y{%- endgeneration %}" + spaces + "z");
        Assert.Equal(spaces + "x" + spaces + "y" + spaces + "z", template.Render(Conversation()));
    }

    [Fact]
    public void Range_with_a_step_lost_to_rounding_terminates()
    {
        Assert.Equal("true", Render("{{ range(100000000000000000000, 100000000000000010000) | length > 0 }}"));
    }

    [Fact]
    public void Cancellation_stops_a_long_render()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var template = ChatTemplate.Parse("{% for i in range(10) %}{{ i }}{% endfor %}");
        Assert.ThrowsAny<OperationCanceledException>(() => template.Render(Conversation(), cancellation: cancelled.Token));
    }

    [Fact]
    public void Variables_that_shadow_globals_are_rejected_like_the_reference_does()
    {
        var template = ChatTemplate.Parse("{{ range }}");
        var context = Conversation() with { Variables = new Dictionary<string, JsonNode?> { ["range"] = 1 } };
        var error = Assert.Throws<TemplateException>(() => template.Render(context));
        Assert.Contains("range", error.Message);
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    [Fact]
    public void Strftime_now_formats_the_injected_clock()
    {
        var template = ChatTemplate.Parse("{{ strftime_now('%d %b %Y, %B %m %H:%M %% %j') }}");
        var context = Conversation() with { Clock = new FixedClock(new DateTimeOffset(2026, 7, 4, 9, 5, 0, TimeSpan.Zero)) };
        Assert.Equal("04 Jul 2026, July 07 09:05 % %j", template.Render(context));
    }

    [Fact]
    public void Typed_messages_reach_the_template_with_their_fields()
    {
        var template = ChatTemplate.Parse(
            "{% for m in messages %}{{ m.role }}|{{ m.content if m.content is string else m.content | map(attribute='text') | join('+') if m.content else '' }}"
            + "|{{ m.tool_calls[0].function.arguments.city if m.tool_calls is defined }}|{{ m.tool_call_id }}|{{ m.reasoning_content }};{% endfor %}"
            + "{{ bos_token }}{{ eos_token }}{{ unk_token }}{{ tools | length }}{{ enable_thinking }}");
        var context = new ChatTemplateContext
        {
            Messages =
            [
                new ChatMessage("user", null) { Parts = [ChatContentPart.FromText("a"), ChatContentPart.FromText("b")] },
                new ChatMessage("assistant", null)
                {
                    ToolCalls = (JsonArray)JsonNode.Parse("""[{"id": "c1", "type": "function", "function": {"name": "w", "arguments": {"city": "Oslo"}}}]""")!,
                    Extra = new JsonObject { ["reasoning_content"] = "hmm" },
                },
                new ChatMessage("tool", "12C") { ToolCallId = "c1" },
            ],
            BosToken = "<s>",
            EosToken = "</s>",
            SpecialTokens = new Dictionary<string, string> { ["unk_token"] = "<unk>" },
            Tools = (JsonArray)JsonNode.Parse("""[{"type": "function"}, {"type": "function"}]""")!,
            Variables = new Dictionary<string, JsonNode?> { ["enable_thinking"] = false },
        };
        Assert.Equal("user|a+b|||;assistant||Oslo||hmm;tool|12C||c1|;<s></s><unk>2false", template.Render(context));
    }

    [Fact]
    public void A_parsed_template_renders_concurrently()
    {
        var template = ChatTemplate.Parse("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content | length %}{{ m.content }}{% endfor %}={{ ns.n }}");
        var results = new string[16];
        Parallel.For(0, results.Length, i =>
        {
            for (var round = 0; round < 200; round++)
                results[i] = template.Render(Conversation(ChatMessage.User(new string('x', i)), ChatMessage.Assistant("yz")));
        });
        for (var i = 0; i < results.Length; i++) Assert.Equal(new string('x', i) + "yz=" + (i + 2), results[i]);
    }

    [Fact]
    public void Cache_parses_each_source_once_and_stays_bounded()
    {
        var cache = new ChatTemplateCache(capacity: 4);
        var first = cache.GetOrParse("{{ messages | length }}");
        Assert.Same(first, cache.GetOrParse("{{ messages | length }}"));
        for (var i = 0; i < 20; i++) cache.GetOrParse($"template {i}");
        Assert.InRange(cache.Count, 1, 4);
        Assert.Throws<TemplateException>(() => cache.GetOrParse("{% if %}"));
        Assert.Equal("1", cache.GetOrParse("{{ messages | length }}").Render(Conversation(ChatMessage.User("x"))));
    }
}
