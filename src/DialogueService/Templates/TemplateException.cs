namespace ChatServices.DialogueService.Templates;

/// <summary>
/// A chat template could not be parsed or rendered: a syntax error, a call to an undefined method, a
/// <c>raise_exception</c> in the template, or a runaway guard tripping. The message is meant for the
/// caller (the Dialogue API maps it to INVALID_ARGUMENT); <see cref="Line"/> and <see cref="Column"/> are
/// 1-based positions in the template source, or 0 when the error has no single position.
/// </summary>
public sealed class TemplateException : Exception
{
    public TemplateException(string message, int line = 0, int column = 0, Exception? inner = null)
        : base(line > 0 ? $"{message} (line {line}, column {column})" : message, inner)
    {
        Reason = message;
        Line = line;
        Column = column;
    }

    /// <summary>The message without the position suffix.</summary>
    public string Reason { get; }

    public int Line { get; }

    public int Column { get; }

    /// <summary>True when the template itself asked to fail (<c>raise_exception</c>).</summary>
    public bool RaisedByTemplate { get; init; }
}
