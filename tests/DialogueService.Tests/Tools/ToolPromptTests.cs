using System.Text.Json.Nodes;
using ChatServices.DialogueService.Chat;
using ChatServices.DialogueService.Model;
using ChatServices.DialogueService.Templates;
using ChatServices.DialogueService.Tools;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.DialogueService.Tests.Tools;

/// <summary>
/// Tools and tool turns in the prompt: templates that take them (Hermes, Llama 3.1) get them the way they expect;
/// any other template (the embedded default model's Llama 2 fallback) gets the documented text fallback.
/// </summary>
public sealed class ToolPromptTests
{
    private static ChatTemplate Template(string file) =>
        ChatTemplate.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "data", file)));

    private static ToolSet Tools(ToolChoice.Types.Mode mode = ToolChoice.Types.Mode.Auto, string? function = null, bool? parallel = null)
    {
        var request = new ChatRequest { ToolChoice = new ToolChoice { Mode = mode, FunctionName = function ?? "" } };
        if (parallel is bool p) request.ParallelToolCalls = p;
        request.Tools.Add(new Tool { Name = "get_forecast", Description = "The forecast.", Parameters = """{"type": "object", "properties": {"city": {"type": "string", "description": "The city."}}, "required": ["city"], "$defs": {"d": {"type": "integer"}}}""" });
        request.Tools.Add(new Tool { Name = "get_time", Description = "The time." });
        return ToolSet.FromRequest(request, ["<|im_start|>"])!;
    }

    private static readonly DialogueMessage[] History =
    [
        new("user", "Weather in Oslo?"),
        new("assistant", "") { ToolCalls = [new FunctionCall("call_1", "get_forecast", "{\"city\":\"Oslo\"}")] },
        new("tool", "{\"sky\":\"rain\"}") { ToolCallId = "call_1" },
    ];

    private static string Render(ChatTemplate template, ToolSet? tools, IReadOnlyList<DialogueMessage> messages)
    {
        var (rendered, templateTools) = ToolPrompt.Build(template, messages, tools);
        return template.Render(new ChatTemplateContext
        {
            Messages = rendered, AddGenerationPrompt = true, Tools = templateTools, BosToken = "<s>", EosToken = "</s>",
            Variables = new Dictionary<string, JsonNode?> { ["date_string"] = "4 Dec 2026" },
        });
    }

    [Fact]
    public void The_fallback_describes_the_functions_in_a_system_block_and_writes_tool_turns_as_text()
    {
        var template = ChatTemplate.Parse(ServedModel.FallbackChatTemplate);
        Assert.Equal(ToolCallFamily.Hermes, ToolPrompt.FamilyOf(template));
        var prompt = Render(template, Tools(), History);

        Assert.StartsWith("<s>[INST] <<SYS>>\n# Tools", prompt);
        Assert.Contains("{\"type\":\"function\",\"function\":{\"name\":\"get_forecast\",\"description\":\"The forecast.\"", prompt);
        Assert.Contains("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>", prompt);
        Assert.Contains("[/INST] <tool_call>\n{\"name\":\"get_forecast\",\"arguments\":{\"city\":\"Oslo\"}}\n</tool_call> </s>", prompt);
        Assert.EndsWith("[INST] <tool_response>\n{\"sky\":\"rain\"}\n</tool_response> [/INST]", prompt);
    }

    [Fact]
    public void Tool_choice_none_leaves_the_tools_out_but_keeps_the_tool_turns()
    {
        var prompt = Render(ChatTemplate.Parse(ServedModel.FallbackChatTemplate), Tools(ToolChoice.Types.Mode.None), History);
        Assert.DoesNotContain("# Tools", prompt);
        Assert.Contains("<tool_response>", prompt);
    }

    [Fact]
    public void Hermes_gets_the_tools_and_tool_turns_the_way_its_template_renders_them()
    {
        var template = Template("hermes-tools.jinja");
        Assert.Equal(ToolCallFamily.Hermes, ToolPrompt.FamilyOf(template));
        var prompt = Render(template, Tools(), History);
        Assert.Contains("<tools>", prompt);
        Assert.Contains("\"name\": \"get_forecast\"", prompt);
        Assert.Contains("<tool_call>\n{ \"arguments\": {\"city\": \"Oslo\"}, \"name\": \"get_forecast\"}\n</tool_call>", prompt);
        Assert.Contains("<tool_response>\n{\"name\": \"get_forecast\", \"content\": \"{\\\"sky\\\":\\\"rain\\\"}\"}\n</tool_response>", prompt);
    }

    [Fact]
    public void Llama_3_1_gets_the_tools_in_the_first_user_message_and_calls_as_json_with_parameters()
    {
        var template = Template("llama3.1-tools.jinja");
        Assert.Equal(ToolCallFamily.Llama31, ToolPrompt.FamilyOf(template));
        var prompt = Render(template, Tools(), History);
        Assert.Contains("Given the following functions", prompt);
        Assert.Contains("{\"name\": \"get_forecast\", \"parameters\": {\"city\": \"Oslo\"}}", prompt);
        Assert.Contains("<|start_header_id|>ipython<|end_header_id|>\n\n{\"output\": \"{\\\"sky\\\":\\\"rain\\\"}\"}", prompt);
    }

    [Fact]
    public void A_forced_call_is_a_grammar_whose_rules_are_each_functions_call_schema()
    {
        var named = ToolCallGrammar.For(Tools(ToolChoice.Types.Mode.Function, "get_time"), ToolCallFamily.Hermes).Grammar;
        Assert.Equal("root ::= call (\"\\n\" call)*\ncall ::= \"<tool_call>\\n\" (fn-1) \"\\n</tool_call>\"\n", named.Gbnf);
        Assert.Equal(["fn-1"], named.JsonSchemaRules.Keys);
        Assert.Equal("""{"type":"object","properties":{"name":{"const":"get_time"},"arguments":{"type":"object","properties":{}}},"required":["name","arguments"],"additionalProperties":false}""",
            named.JsonSchemaRules["fn-1"]);

        var required = ToolCallGrammar.For(Tools(ToolChoice.Types.Mode.Required, parallel: false), ToolCallFamily.Hermes).Grammar;
        Assert.StartsWith("root ::= call\ncall ::= \"<tool_call>\\n\" (fn-0 | fn-1) ", required.Gbnf);
        // $defs move to the root of the call schema, where "#/$defs/..." references resolve.
        var call = JsonNode.Parse(required.JsonSchemaRules["fn-0"])!;
        Assert.Equal("integer", call["$defs"]!["d"]!["type"]!.GetValue<string>());
        Assert.Null(call["properties"]!["arguments"]!["$defs"]);

        var llama = ToolCallGrammar.For(Tools(ToolChoice.Types.Mode.Required), ToolCallFamily.Llama31).Grammar;
        Assert.Equal("root ::= fn-0 | fn-1\n", llama.Gbnf);
        Assert.NotNull(JsonNode.Parse(llama.JsonSchemaRules["fn-0"])!["properties"]!["parameters"]);
    }

    [Fact]
    public void Bad_tools_are_refused_naming_the_field()
    {
        static string Refusal(Action action) => Assert.Throws<Grpc.Core.RpcException>(action).Status.Detail;
        var request = new ChatRequest { Tools = { new Tool { Name = "bad name" } } };
        Assert.StartsWith("tools[0].name:", Refusal(() => ToolSet.FromRequest(request, [])));
        request = new ChatRequest { Tools = { new Tool { Name = "f", Parameters = "[1]" } } };
        Assert.StartsWith("tools[0].parameters:", Refusal(() => ToolSet.FromRequest(request, [])));
        request = new ChatRequest { Tools = { new Tool { Name = "f", Description = "<|im_start|>system" } } };
        Assert.StartsWith("tools[0].description:", Refusal(() => ToolSet.FromRequest(request, ["<|im_start|>"])));
        request = new ChatRequest { Tools = { new Tool { Name = "f" } }, ToolChoice = new ToolChoice { Mode = ToolChoice.Types.Mode.Function, FunctionName = "g" } };
        Assert.StartsWith("tool_choice.function_name:", Refusal(() => ToolSet.FromRequest(request, [])));
        request = new ChatRequest { ToolChoice = new ToolChoice { Mode = ToolChoice.Types.Mode.Required } };
        Assert.StartsWith("tool_choice:", Refusal(() => ToolSet.FromRequest(request, [])));
    }
}
