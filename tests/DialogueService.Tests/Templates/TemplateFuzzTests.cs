using System.Text;
using System.Text.Json.Nodes;
using ChatServices.DialogueService.Templates;

namespace ChatServices.DialogueService.Tests.Templates;

/// <summary>
/// Mutates real chat templates at random (seeded, so failures reproduce). Arbitrary edits must parse and
/// render or throw <see cref="TemplateException"/>: a broken template is a clear error for the caller,
/// never another exception type escaping into the service. Expression-level edits (a filter, test or
/// operator spliced into an existing tag) must render exactly as npm @huggingface/jinja renders them.
/// </summary>
public sealed class TemplateFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly string[] ExpressionEdits =
    [
        " | trim", " | length", " | tojson", " | string", " | upper", " | first", " | last", " | list", " ~ 1.5", " ~ none",
        " + '\u00e9'", " is defined", " is none", " is string", " == 1", " in messages", "[::-1]", "[1:]", "[0]", ".strip()",
        ".split()", " | default('d')", " | items", " | join(',')", " or 0", " and []", " if false", " | int", " | float",
        " | reverse", " | sort", " | unique", ".keys()", ".items()", ".get('role')", " | tojson(indent=2)", " - 1", " * 2",
    ];

    /// <summary>Splices an expression fragment just before the end of a random tag.</summary>
    private static string EditExpression(string source, Random random)
    {
        var positions = new List<int>();
        for (var k = 0; k + 1 < source.Length; k++)
            if (source[k] == ' ' && source[k + 1] is '}' or '%' or '-') positions.Add(k);
        return positions.Count == 0
            ? source
            : source.Insert(positions[random.Next(positions.Count)], ExpressionEdits[random.Next(ExpressionEdits.Length)]);
    }

    [Fact]
    public void Expression_edits_of_real_templates_render_identically_to_huggingface_jinja()
    {
        var dir = Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "data");
        var cases = ReferenceCases.All("<s>", "</s>");
        var items = new List<(string Template, JsonObject Variables)>();
        foreach (var file in Directory.GetFiles(dir, "*.jinja").Order())
        {
            var source = File.ReadAllText(file);
            var random = new Random(Path.GetFileName(file).Aggregate(23, (h, c) => h * 31 + c));
            for (var i = 0; i < 100; i++) items.Add((EditExpression(source, random), cases[random.Next(cases.Count)].Variables));
        }
        var expected = ReferenceRenderer.RenderEach(items);
        var identical = 0;
        var rejected = 0;
        for (var i = 0; i < items.Count; i++)
        {
            RenderOutcome actual;
            try
            {
                actual = new RenderOutcome(ChatTemplate.Parse(items[i].Template).Render(ReferenceCases.ToContext(items[i].Variables)), null);
            }
            catch (TemplateException e)
            {
                actual = new RenderOutcome(null, e.Message);
            }
            var reference = expected[i];
            if (reference.Error is not null && actual.Error is not null)
            {
                rejected++;
                continue;
            }
            Assert.True(reference.Error is null && actual.Error is null && reference.Output == actual.Output,
                $"reference gave {reference}, ours gave {actual}, for template {RenderOutcome.Quote(items[i].Template)}");
            identical++;
        }
        output.WriteLine($"{identical} identical, {rejected} rejected by both, of {items.Count} edited templates");
        Assert.True(identical > items.Count / 5, "too few edited templates rendered to prove anything");
    }

    private static readonly string[] Fragments =
    [
        "{%", "%}", "{{", "}}", "{#", "#}", "{%-", "-%}", "(", ")", "[", "]", "{", "}", "|", "'", "\"", "-", "+", "*", "**", "//",
        " if ", " for ", " in ", " endfor ", " endif ", " else ", " elif ", " not ", " is ", " and ", " or ", " set ", " macro ",
        " endmacro ", ".", ",", ":", "~", "==", "!=", "<", "loop.", "messages", "[0]", "[::-1]", "[1:]", "| tojson", "| length",
        "| trim", "| first", "| join(',')", ".strip()", ".split()", "none", "true", "range(3)", "namespace(a=1)", "raise_exception('x')",
        "\\", "\n", "  ", "-1", "1.5", "'\\u00e9'", "break", "continue", "caller()", " call ", " filter upper ", "generation",
    ];

    public static TheoryData<string> Sources()
    {
        var data = new TheoryData<string>();
        var dir = Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "data");
        foreach (var file in Directory.GetFiles(dir, "*.jinja").Order()) data.Add(Path.GetFileName(file));
        return data;
    }

    private static string Mutate(string source, Random random)
    {
        var sb = new StringBuilder(source);
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits; e++)
        {
            var at = random.Next(sb.Length + 1);
            switch (random.Next(4))
            {
                case 0:
                    sb.Remove(Math.Min(at, sb.Length), Math.Min(random.Next(1, 12), sb.Length - Math.Min(at, sb.Length)));
                    break;
                case 1:
                    sb.Insert(at, Fragments[random.Next(Fragments.Length)]);
                    break;
                case 2:
                {
                    var start = random.Next(sb.Length + 1);
                    var length = Math.Min(random.Next(1, 40), sb.Length - start);
                    sb.Insert(at, sb.ToString(start, length));
                    break;
                }
                default:
                    sb.Length = Math.Min(sb.Length, at);
                    break;
            }
        }
        return sb.ToString();
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Mutated_templates_fail_only_with_template_exceptions(string file)
    {
        var source = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "data", file));
        var random = new Random(file.Aggregate(17, (h, c) => h * 31 + c));
        var limits = TemplateLimits.Default with { MaxSteps = 20_000, MaxStringLength = 200_000 };
        var contexts = ReferenceCases.All("<s>", "</s>").Where((_, i) => i % 5 == 0).Select(c => ReferenceCases.ToContext(c.Variables)).ToList();
        var parsed = 0;
        for (var i = 0; i < 300; i++)
        {
            var mutated = Mutate(source, random);
            ChatTemplate template;
            try
            {
                template = ChatTemplate.Parse(mutated);
            }
            catch (TemplateException)
            {
                continue;
            }
            catch (Exception e)
            {
                Assert.Fail($"Parse threw {e.GetType().Name} for mutation {i}: {e.Message}\n{mutated}");
                return;
            }
            parsed++;
            foreach (var context in contexts)
            {
                try
                {
                    template.Render(context, limits);
                }
                catch (TemplateException)
                {
                }
                catch (Exception e)
                {
                    Assert.Fail($"Render threw {e.GetType().Name} for mutation {i}: {e}\n{mutated}");
                }
            }
        }
        Assert.True(parsed > 0, "no mutation parsed; the renderer was never exercised");
    }
}
