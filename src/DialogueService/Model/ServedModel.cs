using System.Text.Json;
using System.Text.Json.Nodes;
using ChatServices.DialogueService.Templates;
using ChatServices.DialogueService.Tokenization;

namespace ChatServices.DialogueService.Model;

/// <summary>Where the served model's folder is and what to call it (configuration section <c>Dialogue</c>).</summary>
public sealed class ServedModelOptions
{
    /// <summary>The model folder (genai_config.json, tokenizer.json, tokenizer_config.json). DialogueService reads
    /// only the text side of it: the weights stay with InferenceService.</summary>
    public string ModelPath { get; set; } = "";

    /// <summary>The model's name in the API. Default: the folder's name.</summary>
    public string? ModelId { get; set; }
}

/// <summary>
/// The text side of the served model: its tokenizer, chat template, special tokens and context length, loaded once
/// from the model folder. Immutable and shared by every request.
/// </summary>
public sealed class ServedModel
{
    /// <summary>
    /// Used when tokenizer_config.json has no chat_template (base models, such as the embedded default): Llama 2's
    /// published chat template, written with the model's own BOS/EOS strings.
    /// </summary>
    public const string FallbackChatTemplate =
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
        "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
        "{% for message in loop_messages %}" +
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
        "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
        "{% else %}{% set content = message['content'] %}{% endif %}" +
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
        "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}" +
        "{% endfor %}";

    private ServedModel(string id, string folder, IChatTokenizer tokenizer, ChatTemplate template, bool templateFromModel,
        IReadOnlyDictionary<string, string> specialTokens, int contextLength, IReadOnlyList<int> eosTokenIds, DateTimeOffset created)
    {
        Id = id;
        Folder = folder;
        Tokenizer = tokenizer;
        ChatTemplate = template;
        HasOwnChatTemplate = templateFromModel;
        SpecialTokens = specialTokens;
        ContextLength = contextLength;
        EosTokenIds = eosTokenIds;
        Created = created;
        SpecialTokenStrings = [.. tokenizer.AddedTokens.Where(t => t.Special && t.Content.Length > 0)
            .Select(t => t.Content).Distinct().OrderByDescending(t => t.Length)];
    }

    public string Id { get; }
    public string Folder { get; }
    public IChatTokenizer Tokenizer { get; }
    public ChatTemplate ChatTemplate { get; }

    /// <summary>False when the folder has no chat template and <see cref="FallbackChatTemplate"/> is used.</summary>
    public bool HasOwnChatTemplate { get; }

    public IReadOnlyDictionary<string, string> SpecialTokens { get; }

    /// <summary>The text of every special (control) token, longest first.</summary>
    public IReadOnlyList<string> SpecialTokenStrings { get; }

    /// <summary>Tokens of prompt plus reply the model attends to.</summary>
    public int ContextLength { get; }

    /// <summary>Token ids that end a turn: genai_config's eos_token_id(s) and the tokenizer's EOS.</summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>When the model folder was written (its genai_config.json's modification time).</summary>
    public DateTimeOffset Created { get; }

    /// <summary>Renders messages with the chat template into the prompt text.</summary>
    /// <param name="tools">Tool definitions for templates that take <c>tools</c> (see <see cref="Tools.ToolPrompt"/>).</param>
    public string RenderPrompt(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, CancellationToken cancellationToken = default, JsonArray? tools = null) =>
        ChatTemplate.Render(new ChatTemplateContext
        {
            Messages = messages,
            Tools = tools,
            AddGenerationPrompt = addGenerationPrompt,
            BosToken = SpecialTokens.GetValueOrDefault("bos_token"),
            EosToken = SpecialTokens.GetValueOrDefault("eos_token"),
            SpecialTokens = SpecialTokens,
        }, cancellation: cancellationToken);

    /// <summary>
    /// Prompt text to token ids. The template already wrote the special tokens it wants (BOS included), so none
    /// are added, and only the template's own special-token strings are parsed as control tokens: the rendered
    /// prompt is trusted text here, user content was placed in it by the template.
    /// </summary>
    public int[] EncodePrompt(string prompt) => Tokenizer.Encode(prompt, addSpecialTokens: false, parseSpecialTokens: true);

    public static ServedModel Load(ServedModelOptions options)
    {
        var folder = Path.GetFullPath(options.ModelPath ?? "");
        if (string.IsNullOrWhiteSpace(options.ModelPath) || !Directory.Exists(folder))
            throw new InvalidOperationException($"Dialogue:ModelPath must name a model folder; '{options.ModelPath}' does not exist.");

        var tokenizer = TokenizerLoader.LoadFromFolder(folder);
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        var chatConfig = File.Exists(configPath) ? TokenizerChatConfig.Load(configPath) : null;
        var template = chatConfig?.SelectTemplate();

        var genaiPath = Path.Combine(folder, "genai_config.json");
        var (contextLength, eos) = ReadGenAiConfig(genaiPath);
        if (tokenizer.EosTokenId is int tokenizerEos && !eos.Contains(tokenizerEos)) eos.Add(tokenizerEos);

        var special = new Dictionary<string, string>(chatConfig?.SpecialTokens ?? new Dictionary<string, string>());
        if (tokenizer.BosToken is not null) special.TryAdd("bos_token", tokenizer.BosToken);
        if (tokenizer.EosToken is not null) special.TryAdd("eos_token", tokenizer.EosToken);

        var id = string.IsNullOrWhiteSpace(options.ModelId) ? new DirectoryInfo(folder).Name : options.ModelId!;
        return new ServedModel(id, folder, tokenizer, template ?? ChatTemplate.Parse(FallbackChatTemplate), template is not null,
            special, contextLength, eos, File.GetLastWriteTimeUtc(genaiPath));
    }

    private static (int ContextLength, List<int> Eos) ReadGenAiConfig(string path)
    {
        if (!File.Exists(path)) throw new InvalidOperationException($"{path} is missing: not a model folder.");
        var model = JsonNode.Parse(File.ReadAllText(path))?["model"]
            ?? throw new InvalidOperationException($"{path} has no \"model\" section.");
        var context = model["context_length"]?.GetValue<int>()
            ?? throw new InvalidOperationException($"{path} has no model.context_length.");
        var eos = new List<int>();
        switch (model["eos_token_id"])
        {
            case JsonArray ids: eos.AddRange(ids.Select(n => n!.GetValue<int>())); break;
            case JsonValue one when one.GetValueKind() == JsonValueKind.Number: eos.Add(one.GetValue<int>()); break;
        }
        return (context, eos);
    }
}
