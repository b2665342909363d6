using System.Text.Json.Nodes;

namespace ChatServices.DialogueService.Templates;

/// <summary>
/// A parsed Hugging Face chat template (the Jinja in tokenizer_config.json's <c>chat_template</c>),
/// rendered with the semantics of @huggingface/jinja, the renderer transformers.js uses, so that the
/// prompt is identical to what that reference produces. Parse once and reuse: a template is immutable
/// and <see cref="Render"/> is safe to call concurrently.
/// </summary>
/// <remarks>
/// Where the reference departs from Python Jinja, this follows the reference: <c>strip()</c>,
/// <c>lstrip()</c> and <c>rstrip()</c> ignore their argument and remove whitespace; strings are not
/// iterable in a for loop; <c>==</c> is JavaScript's loose equality; filters it lacks (such as
/// <c>round</c>) are errors. Known differences, all in templates the reference itself cannot render:
/// <c>[] | first</c> is undefined here where the reference fails on its next use, and printing a
/// function prints a placeholder rather than JavaScript source.
/// </remarks>
public sealed class ChatTemplate
{
    private readonly ProgramNode _program;

    private ChatTemplate(string source, ProgramNode program)
    {
        Source = source;
        _program = program;
    }

    public string Source { get; }

    /// <summary>Parses a template. Throws <see cref="TemplateException"/> (with line and column) on a syntax error.</summary>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            var tokens = Lexer.Tokenize(source, out _);
            return new ChatTemplate(source, Parser.Parse(tokens, source));
        }
        catch (Exception error) when (IsEngineDefect(error))
        {
            throw new TemplateException($"Template could not be parsed: {error.Message}", inner: error);
        }
    }

    /// <summary>
    /// Exceptions that can only come from a defect in this engine, not from the template. They are still
    /// reported as a <see cref="TemplateException"/> so that one odd template never takes a request down
    /// with an unexpected exception type; the inner exception keeps the stack for diagnosis.
    /// </summary>
    private static bool IsEngineDefect(Exception error) =>
        error is InvalidCastException or ArgumentException or IndexOutOfRangeException or InvalidOperationException
            or OverflowException or FormatException or NullReferenceException or KeyNotFoundException or NotSupportedException;

    /// <summary>
    /// Renders the prompt. Throws <see cref="TemplateException"/> when the template fails: it raises
    /// (<c>raise_exception</c>), calls something undefined, misuses a value, or trips a limit.
    /// </summary>
    public string Render(ChatTemplateContext context, TemplateLimits? limits = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var messages = new List<Value>(context.Messages.Count);
        var contentLength = 0L;
        foreach (var message in context.Messages)
        {
            messages.Add(message.ToValue());
            contentLength += (message.Content?.Length ?? 0) + 64;
        }

        var variables = new List<(string, Value)>
        {
            ("messages", new ArrayValue(messages)),
            ("add_generation_prompt", BooleanValue.Of(context.AddGenerationPrompt)),
        };
        if (context.BosToken is not null) variables.Add(("bos_token", new StringValue(context.BosToken)));
        if (context.EosToken is not null) variables.Add(("eos_token", new StringValue(context.EosToken)));
        if (context.SpecialTokens is not null)
            foreach (var (name, token) in context.SpecialTokens)
                if (name is not ("bos_token" or "eos_token")) variables.Add((name, new StringValue(token)));
        if (context.Tools is not null) variables.Add(("tools", JsonValues.From(context.Tools)));
        if (context.Variables is not null)
            foreach (var (name, value) in context.Variables) variables.Add((name, JsonValues.From(value)));
        var expected = (int)Math.Min(contentLength + 512, int.MaxValue);
        return Render(variables, limits ?? TemplateLimits.Default, context.Clock ?? TimeProvider.System, expected, cancellation);
    }

    /// <summary>Renders with arbitrary top-level variables given as JSON (an object of name to value).</summary>
    public string Render(JsonObject variables, TemplateLimits? limits = null, TimeProvider? clock = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var list = new List<(string, Value)>(variables.Count);
        foreach (var (name, value) in JsonValues.OrderedEntries(variables)) list.Add((name, JsonValues.From(value)));
        return Render(list, limits ?? TemplateLimits.Default, clock ?? TimeProvider.System, 1024, cancellation);
    }

    private string Render(List<(string Name, Value Value)> variables, TemplateLimits limits, TimeProvider clock, int expectedLength, CancellationToken cancellation)
    {
        var interpreter = new Interpreter(limits, clock, cancellation);
        var globals = new Scope(null);
        Builtins.DeclareGlobals(globals, interpreter);
        foreach (var (name, value) in variables)
            if (!globals.TryDeclare(name, value))
                throw new TemplateException($"Variable already declared: {name}");
        try
        {
            return interpreter.Run(_program, globals, expectedLength);
        }
        catch (RenderError error)
        {
            var (line, column) = error.Offset >= 0 ? SourcePosition.Of(Source, error.Offset) : (0, 0);
            throw new TemplateException(error.Message, line, column, error) { RaisedByTemplate = error.RaisedByTemplate };
        }
        catch (Exception error) when (IsEngineDefect(error) && error is not OperationCanceledException)
        {
            throw new TemplateException($"Template rendering failed: {error.Message}", inner: error);
        }
    }
}
