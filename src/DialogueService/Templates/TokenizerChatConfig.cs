using System.Text.Json;
using System.Text.Json.Nodes;

namespace ChatServices.DialogueService.Templates;

/// <summary>
/// The chat-related part of a model's tokenizer_config.json: its chat template(s), parsed once, and its
/// special tokens. <c>chat_template</c> is either a string or a list of <c>{"name", "template"}</c>
/// (the unnamed or "default" one is the default; "tool_use" is preferred when tools are given, as
/// transformers does). Special tokens are strings or AddedToken objects (<c>{"content": ...}</c>).
/// </summary>
public sealed class TokenizerChatConfig
{
    private static readonly string[] SpecialTokenNames =
        ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"];

    private TokenizerChatConfig(IReadOnlyDictionary<string, ChatTemplate> templates, IReadOnlyDictionary<string, string> specialTokens)
    {
        Templates = templates;
        SpecialTokens = specialTokens;
    }

    /// <summary>Templates by name; a single-string chat_template is named "default".</summary>
    public IReadOnlyDictionary<string, ChatTemplate> Templates { get; }

    /// <summary>Special tokens by their tokenizer_config.json name (bos_token, eos_token, ...).</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; }

    public string? BosToken => SpecialTokens.GetValueOrDefault("bos_token");

    public string? EosToken => SpecialTokens.GetValueOrDefault("eos_token");

    public static TokenizerChatConfig Load(string path) => Parse(File.ReadAllText(path));

    /// <summary>
    /// Reads a model folder the way transformers does: tokenizer_config.json, then a <c>chat_template.jinja</c>
    /// or <c>chat_template.json</c> beside it (which take precedence over the config's own template), and
    /// named templates in <c>additional_chat_templates/*.jinja</c>.
    /// </summary>
    public static TokenizerChatConfig LoadFolder(string folder)
    {
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = File.Exists(configPath) ? Load(configPath) : Parse("{}");
        var templates = new Dictionary<string, ChatTemplate>(config.Templates, StringComparer.Ordinal);

        var jinjaPath = Path.Combine(folder, "chat_template.jinja");
        var jsonPath = Path.Combine(folder, "chat_template.json");
        if (File.Exists(jinjaPath))
        {
            templates["default"] = ParseNamed("default", File.ReadAllText(jinjaPath));
        }
        else if (File.Exists(jsonPath))
        {
            var fromJson = Parse(File.ReadAllText(jsonPath));
            foreach (var (name, template) in fromJson.Templates) templates[name] = template;
        }

        var additional = Path.Combine(folder, "additional_chat_templates");
        if (Directory.Exists(additional))
        {
            foreach (var file in Directory.EnumerateFiles(additional, "*.jinja"))
            {
                var name = Path.GetFileNameWithoutExtension(file);
                templates[name] = ParseNamed(name, File.ReadAllText(file));
            }
        }
        return new TokenizerChatConfig(templates, config.SpecialTokens);
    }

    /// <summary>Reads the configuration; throws <see cref="TemplateException"/> when a template does not parse
    /// and <see cref="JsonException"/> when the file is not JSON.</summary>
    public static TokenizerChatConfig Parse(string json)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("tokenizer_config.json is not a JSON object");
        var templates = new Dictionary<string, ChatTemplate>(StringComparer.Ordinal);
        switch (root["chat_template"])
        {
            case JsonValue single when single.TryGetValue<string>(out var source):
                templates["default"] = ParseNamed("default", source);
                break;
            case JsonArray named:
                foreach (var entry in named)
                {
                    if (entry is not JsonObject obj || obj["template"] is not JsonValue t || !t.TryGetValue<string>(out var text))
                        throw new JsonException("chat_template list entries must be objects with a string \"template\"");
                    var name = obj["name"] is JsonValue n && n.TryGetValue<string>(out var s) ? s : "default";
                    templates[name] = ParseNamed(name, text);
                }
                break;
        }

        var tokens = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in SpecialTokenNames)
        {
            var token = root[name] switch
            {
                JsonValue v when v.TryGetValue<string>(out var text) => text,
                JsonObject added when added["content"] is JsonValue c && c.TryGetValue<string>(out var content) => content,
                _ => null,
            };
            if (token is not null) tokens[name] = token;
        }
        return new TokenizerChatConfig(templates, tokens);
    }

    private static ChatTemplate ParseNamed(string name, string source)
    {
        try
        {
            return ChatTemplate.Parse(source);
        }
        catch (TemplateException error)
        {
            throw new TemplateException($"chat_template '{name}': {error.Reason}", error.Line, error.Column, error);
        }
    }

    /// <summary>
    /// The template to use: the named one when <paramref name="name"/> is given, otherwise "tool_use" when
    /// tools are present and such a template exists, otherwise "default". Null when there is none.
    /// </summary>
    public ChatTemplate? SelectTemplate(string? name = null, bool hasTools = false)
    {
        if (name is not null) return Templates.GetValueOrDefault(name);
        if (hasTools && Templates.TryGetValue("tool_use", out var toolUse)) return toolUse;
        return Templates.GetValueOrDefault("default");
    }

    /// <summary>A render context carrying this configuration's special tokens.</summary>
    public ChatTemplateContext CreateContext(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) => new()
    {
        Messages = messages,
        AddGenerationPrompt = addGenerationPrompt,
        BosToken = BosToken,
        EosToken = EosToken,
        SpecialTokens = SpecialTokens,
    };
}
