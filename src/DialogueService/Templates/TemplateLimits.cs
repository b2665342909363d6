namespace ChatServices.DialogueService.Templates;

/// <summary>
/// Bounds that keep a hostile or buggy template from exhausting the service. Rendering is on the
/// request path, so a template that loops forever, recurses through macros or builds a gigabyte
/// string must fail with a <see cref="TemplateException"/> long before it hurts the process.
/// </summary>
public sealed record TemplateLimits
{
    public static TemplateLimits Default { get; } = new();

    /// <summary>Most UTF-16 characters any one string (the output included) may reach.</summary>
    public int MaxStringLength { get; init; } = 16 * 1024 * 1024;

    /// <summary>Most loop iterations plus macro calls one render may perform, all loops together.</summary>
    public long MaxSteps { get; init; } = 2_000_000;

    /// <summary>Most nested macro calls and nested blocks during a render.</summary>
    public int MaxDepth { get; init; } = 200;

    /// <summary>Most elements a list built by the template (range, concatenation) may hold.</summary>
    public int MaxListLength { get; init; } = 1_000_000;
}
