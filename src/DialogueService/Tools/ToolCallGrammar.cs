using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.DialogueService.Tools;

/// <summary>
/// The constraint that makes a forced reply (tool_choice REQUIRED or FUNCTION) a valid call by construction: a GBNF
/// grammar for the family's call format whose nonterminals <c>fn-0</c>, <c>fn-1</c>, … are the functions' call
/// schemas (<c>{"name": const, "arguments": parameters}</c>) given as JSON Schema rules.
/// </summary>
/// <remarks>
/// Hermes: <c>root ::= call ("\n" call)*</c> with parallel calls (<c>root ::= call</c> without), and
/// <c>call ::= "&lt;tool_call&gt;\n" (fn-0 | fn-1 | …) "\n&lt;/tool_call&gt;"</c>. Llama 3.1 writes one bare JSON call
/// with <c>parameters</c>: <c>root ::= fn-0 | fn-1 | …</c>.
/// </remarks>
public static partial class ToolCallGrammar
{
    public const string RulePrefix = "fn-";

    public static Constraint For(ToolSet tools, ToolCallFamily family)
    {
        var grammar = new Grammar();
        var alternatives = new List<string>();
        var argumentsKey = family == ToolCallFamily.Llama31 ? "parameters" : "arguments";
        for (var i = 0; i < tools.Functions.Count; i++)
        {
            var f = tools.Functions[i];
            if (tools.ForcedFunction is not null && f.Name != tools.ForcedFunction) continue;
            var rule = RulePrefix + i;
            alternatives.Add(rule);
            grammar.JsonSchemaRules[rule] = CallSchema(f, argumentsKey).ToJsonString(ToolCallParser.Compact);
        }

        var anyFunction = string.Join(" | ", alternatives);
        var gbnf = new StringBuilder();
        if (family == ToolCallFamily.Llama31)
        {
            gbnf.Append("root ::= ").Append(anyFunction).Append('\n');
        }
        else
        {
            gbnf.Append(tools.ParallelCalls ? "root ::= call (\"\\n\" call)*\n" : "root ::= call\n");
            gbnf.Append("call ::= \"<tool_call>\\n\" (").Append(anyFunction).Append(") \"\\n</tool_call>\"\n");
        }
        grammar.Gbnf = gbnf.ToString();
        return new Constraint { Grammar = grammar };
    }

    /// <summary>The JSON a call of <paramref name="f"/> is: its name as a constant and its parameters schema.</summary>
    private static JsonObject CallSchema(FunctionTool f, string argumentsKey)
    {
        var parameters = (JsonObject)f.Parameters.DeepClone();
        // $defs stay at the root of the call schema, where "#/$defs/…" references resolve.
        var call = new JsonObject { ["type"] = "object" };
        foreach (var defs in new[] { "$defs", "definitions" })
        {
            if (parameters[defs] is { } d)
            {
                parameters.Remove(defs);
                call[defs] = d;
            }
        }
        call["properties"] = new JsonObject
        {
            ["name"] = new JsonObject { ["const"] = f.Name },
            [argumentsKey] = parameters,
        };
        call["required"] = new JsonArray("name", argumentsKey);
        call["additionalProperties"] = false;
        return call;
    }

    [GeneratedRegex(@"\bfn-(\d+)\b")]
    private static partial Regex RuleName();

    /// <summary>
    /// The request field a refusal of the grammar by the inference tier is about: <c>tools[i].parameters</c> when it
    /// names the rule of function i (or there is one function), else <c>tools</c>.
    /// </summary>
    public static string FieldOf(string engineMessage, ToolSet tools)
    {
        var match = RuleName().Match(engineMessage);
        if (match.Success && int.TryParse(match.Groups[1].Value, out var index) && index < tools.Functions.Count)
            return $"tools[{index}].parameters";
        var callable = tools.Callable.ToList();
        if (callable.Count == 1)
        {
            for (var i = 0; i < tools.Functions.Count; i++)
                if (tools.Functions[i] == callable[0]) return $"tools[{i}].parameters";
        }
        return "tools";
    }
}
