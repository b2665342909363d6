using System.Text.Json.Nodes;
using ChatServices.DialogueService.Templates;

namespace ChatServices.DialogueService.Tests.Templates;

/// <summary>
/// Conversations every template family is rendered with, by us and by the reference. Each case is the
/// JSON the reference receives; <see cref="ToContext"/> turns the same JSON into the typed
/// <see cref="ChatTemplateContext"/> our renderer takes, so both sides see identical input.
/// Message fields are written in the order <see cref="ChatMessage"/> presents them (role, content,
/// name, tool_call_id, tool_calls, then the rest).
/// </summary>
internal static class ReferenceCases
{
    private static JsonObject Msg(string role, JsonNode? content, params (string Key, JsonNode? Value)[] extra)
    {
        var message = new JsonObject { ["role"] = role, ["content"] = content };
        foreach (var (key, value) in extra) message[key] = value;
        return message;
    }

    private static JsonObject User(string content) => Msg("user", content);

    private static JsonObject Assistant(string content) => Msg("assistant", content);

    private static JsonObject System(string content) => Msg("system", content);

    private static JsonArray Tools() => (JsonArray)JsonNode.Parse("""
        [
          {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"},
              "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
          {"type": "function", "function": {"name": "search", "description": "Search the web for \"quoted\" text — ünïcödé ok.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "max_results": {"type": "integer", "default": 5}}, "required": ["query"]}}}
        ]
        """)!;

    private static JsonObject ToolCall(string name, JsonNode arguments, string id = "call_1") =>
        new() { ["id"] = id, ["type"] = "function", ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments } };

    /// <summary>The named cases; special tokens and a fixed date_string are added to every case.</summary>
    public static List<(string Name, JsonObject Variables)> All(string? bos, string? eos)
    {
        var cases = new List<(string, JsonObject)>();
        void Add(string name, bool prompt, JsonArray messages, params (string Key, JsonNode? Value)[] extra)
        {
            var variables = new JsonObject
            {
                ["messages"] = messages,
                ["add_generation_prompt"] = prompt,
            };
            if (bos is not null) variables["bos_token"] = bos;
            if (eos is not null) variables["eos_token"] = eos;
            variables["date_string"] = "22 Nov 2026";
            foreach (var (key, value) in extra) variables[key] = value;
            cases.Add((name, variables));
        }

        Add("single user turn, generation prompt", true, [User("Hello, how are you?")]);
        Add("single user turn, no generation prompt", false, [User("Ping")]);
        Add("system and user", true, [System("You are a helpful assistant."), User("What is the capital of France?")]);
        Add("multi-turn ending on user", true, [User("Hi!"), Assistant("Hello! How can I help?"), User("Tell me a joke.")]);
        Add("system and full exchange, assistant last", false, [System("Answer briefly."), User("2+2?"), Assistant("4")]);
        Add("assistant last with generation prompt", true, [User("Hi"), Assistant("Hello there")]);
        Add("unicode content", true,
            [System("Réponds en français 🇫🇷."), User("日本語で答えて 🤖 — עברית, e\u0301, \U0001F600 and ½"), Assistant("Très bien ✓"), User("Ещё раз?")]);
        Add("content that looks like Jinja", true,
            [User("{{ messages }} {% if x %}{# comment #} {%- raw -%} \\n \"quotes\" 'single' \\\\ }}"), Assistant("{% endfor %}"), User("{{-")]);
        Add("empty content", true, [User("")]);
        Add("whitespace around content", true,
            [User("  Café olé?  "), Assistant(" Of course! "), User("\tthanks\n\u00a0\u2003")]);
        Add("roles out of order: assistant first", true, [Assistant("I speak first."), User("odd")]);
        Add("roles out of order: two user turns", true, [User("one"), User("two")]);
        Add("system only", true, [System("Only a system message.")]);
        Add("no messages", true, []);
        Add("unknown role", true, [User("hi"), Msg("narrator", "Meanwhile...")]);
        Add("content as a list of text parts", true,
            [System("sys"), Msg("user", new JsonArray(new JsonObject { ["type"] = "text", ["text"] = " Hello " }, new JsonObject { ["type"] = "text", ["text"] = "world" }))]);
        var longConversation = new JsonArray { System("You are terse.") };
        for (var i = 0; i < 12; i++)
        {
            longConversation.Add(User($"Question {i}: what is {i} squared?"));
            longConversation.Add(Assistant($"{i * i}"));
        }
        longConversation.Add(User("Thanks."));
        Add("long conversation", true, longConversation);
        Add("thinking disabled", true, [User("Quick answer please.")], ("enable_thinking", false));
        Add("tools offered", true, [System("You can call tools."), User("Weather in Paris?")], ("tools", Tools()));
        Add("tools without a system message", true, [User("Weather in Paris?")], ("tools", Tools()));
        Add("tool call with object arguments and a tool response", true,
            [User("Weather in Paris?"),
             Msg("assistant", "", ("tool_calls", new JsonArray(ToolCall("get_weather", new JsonObject { ["city"] = "Paris", ["unit"] = "celsius" })))),
             Msg("tool", "{\"temperature\": 21, \"sky\": \"clear\"}", ("tool_call_id", "call_1")),],
            ("tools", Tools()));
        Add("tool call with string arguments", true,
            [User("Search for cats"),
             Msg("assistant", "Let me search.", ("tool_calls", new JsonArray(ToolCall("search", "{\"query\": \"cats\"}")))),
             Msg("tool", "Cats are small carnivorous mammals."),
             Msg("tool", "Second result."),
             Assistant("Cats are mammals."),
             User("More?")],
            ("tools", Tools()));
        Add("reasoning inside the content", true,
            [User("Think first."), Assistant("<think>\nLet me reason.\n</think>\n\nThe answer is 42."), User("Why?")]);
        Add("reasoning as its own field", false,
            [User("Think first."), Msg("assistant", "The answer is 42.", ("reasoning_content", "Because.")),]);
        return cases;
    }

    public static ChatTemplateContext ToContext(JsonObject variables)
    {
        var messages = new List<ChatMessage>();
        foreach (var node in variables["messages"]!.AsArray())
        {
            var m = node!.AsObject();
            var content = m["content"];
            var message = new ChatMessage(m["role"]!.GetValue<string>(), content is JsonValue v ? v.GetValue<string>() : null)
            {
                Parts = content is JsonArray parts
                    ? parts.Select(p => new ChatContentPart(p!["type"]!.GetValue<string>(), p["text"]?.GetValue<string>())).ToList()
                    : null,
                Name = m["name"]?.GetValue<string>(),
                ToolCallId = m["tool_call_id"]?.GetValue<string>(),
                ToolCalls = m["tool_calls"]?.DeepClone().AsArray(),
            };
            var extra = new JsonObject();
            foreach (var (key, value) in m)
                if (key is not ("role" or "content" or "name" or "tool_call_id" or "tool_calls")) extra[key] = value?.DeepClone();
            messages.Add(message with { Extra = extra.Count > 0 ? extra : null });
        }
        var others = new Dictionary<string, JsonNode?>();
        foreach (var (key, value) in variables)
            if (key is not ("messages" or "add_generation_prompt" or "bos_token" or "eos_token" or "tools")) others[key] = value?.DeepClone();
        return new ChatTemplateContext
        {
            Messages = messages,
            AddGenerationPrompt = variables["add_generation_prompt"]!.GetValue<bool>(),
            BosToken = variables["bos_token"]?.GetValue<string>(),
            EosToken = variables["eos_token"]?.GetValue<string>(),
            Tools = variables["tools"]?.DeepClone().AsArray(),
            Variables = others,
        };
    }
}
