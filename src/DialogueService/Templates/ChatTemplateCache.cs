using System.Collections.Concurrent;

namespace ChatServices.DialogueService.Templates;

/// <summary>
/// Parsed templates keyed by their source text, so that a template arriving with every request (a
/// per-request override, or the model's own template re-read on reload) is parsed once. Bounded: when
/// full it starts over, so a stream of distinct templates costs re-parsing, never unbounded memory.
/// Templates that fail to parse are not cached; the caller gets the <see cref="TemplateException"/>.
/// </summary>
public sealed class ChatTemplateCache(int capacity = 64)
{
    private readonly ConcurrentDictionary<string, ChatTemplate> _templates = new(StringComparer.Ordinal);

    public int Count => _templates.Count;

    public ChatTemplate GetOrParse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (_templates.TryGetValue(source, out var cached)) return cached;
        var parsed = ChatTemplate.Parse(source);
        if (_templates.Count >= capacity) _templates.Clear();
        return _templates.GetOrAdd(source, parsed);
    }
}
