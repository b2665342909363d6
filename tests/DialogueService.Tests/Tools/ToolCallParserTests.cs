using ChatServices.DialogueService.Tools;

namespace ChatServices.DialogueService.Tests.Tools;

/// <summary>Tool calls found in streamed reply text, per model family, with their markup never released as text.</summary>
public sealed class ToolCallParserTests
{
    /// <summary>Feeds <paramref name="pieces"/> one by one, then flushes; returns the released text and the calls.</summary>
    private static (string Text, List<FunctionCall> Calls) Parse(ToolCallFamily family, params string[] pieces)
    {
        var parser = new ToolCallParser(family);
        var calls = new List<FunctionCall>();
        var text = string.Concat(pieces.Select(p => parser.Push(p, calls))) + parser.Flush(calls);
        Assert.Equal(calls, parser.Calls);
        return (text, calls);
    }

    [Fact]
    public void Hermes_calls_split_across_pieces_are_found_and_the_text_around_them_kept()
    {
        var reply = "Checking both.<tool_call>\n{\"name\": \"get_forecast\", \"arguments\": {\"city\": \"Oslo\", \"days\": 2}}\n</tool_call>\n" +
                    "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        // Every split point: the result must not depend on where the pieces break.
        for (var cut = 1; cut < reply.Length; cut += 3)
        {
            var (text, calls) = Parse(ToolCallFamily.Hermes, reply[..cut], reply[cut..]);
            Assert.Equal("Checking both.\n", text);
            Assert.Equal(["get_forecast", "get_time"], calls.Select(c => c.Name));
            Assert.Equal("{\"city\":\"Oslo\",\"days\":2}", calls[0].Arguments);
            Assert.Equal("{\"city\":\"Paris\"}", calls[1].Arguments);
            Assert.All(calls, c => Assert.Matches("^call_[A-Za-z0-9]{24}$", c.Id));
        }
    }

    [Fact]
    public void Text_that_only_looks_like_the_start_of_a_tag_is_held_back_then_released()
    {
        var parser = new ToolCallParser(ToolCallFamily.Hermes);
        var calls = new List<FunctionCall>();
        Assert.Equal("a ", parser.Push("a <tool", calls));
        Assert.Equal("<tools are fine", parser.Push("s are fine", calls));
        Assert.Equal("<tool", parser.Push("<tool", calls) + parser.Flush(calls));
        Assert.Empty(calls);
    }

    [Fact]
    public void A_block_that_is_not_a_call_is_released_as_text_and_a_call_cut_before_its_closing_tag_still_counts()
    {
        var (text, calls) = Parse(ToolCallFamily.Hermes, "<tool_call>not json</tool_call> ok");
        Assert.Equal("<tool_call>not json</tool_call> ok", text);
        Assert.Empty(calls);

        (text, calls) = Parse(ToolCallFamily.Hermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n");
        Assert.Equal("", text);
        Assert.Equal("f", Assert.Single(calls).Name);

        (text, calls) = Parse(ToolCallFamily.Hermes, "<tool_call>\n{\"name\": \"f\", \"argu");
        Assert.Equal("<tool_call>\n{\"name\": \"f\", \"argu", text);
        Assert.Empty(calls);
    }

    [Fact]
    public void Arguments_written_as_a_JSON_string_are_taken_as_the_arguments_text()
    {
        var (_, calls) = Parse(ToolCallFamily.Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>");
        Assert.Equal("{\"a\": 1}", Assert.Single(calls).Arguments);
    }

    [Fact]
    public void Llama_3_1_json_calls_with_parameters_are_found_and_prose_streams_as_text()
    {
        var (text, calls) = Parse(ToolCallFamily.Llama31, " {\"name\": \"get_time\", ", "\"parameters\": {\"city\": \"Oslo\"}}");
        Assert.Equal("", text);
        var call = Assert.Single(calls);
        Assert.Equal(("get_time", "{\"city\":\"Oslo\"}"), (call.Name, call.Arguments));

        var parser = new ToolCallParser(ToolCallFamily.Llama31);
        var none = new List<FunctionCall>();
        Assert.Equal("It is noon", parser.Push("It is noon", none)); // prose is not held back
        Assert.Equal(" {\"name\": 1}", parser.Push(" {\"name\": 1}", none) + parser.Flush(none));
        Assert.Empty(none);

        (text, calls) = Parse(ToolCallFamily.Llama31, "{\"weather\": \"sunny\"}");
        Assert.Equal("{\"weather\": \"sunny\"}", text);
        Assert.Empty(calls);
    }
}
