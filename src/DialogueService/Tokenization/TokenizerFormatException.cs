namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// A tokenizer.json / tokenizer_config.json that cannot be loaded: malformed, or naming a component type
/// (normalizer, pre-tokenizer, model, post-processor, decoder) this implementation does not support.
/// The message names the file section and the type so that the operator knows what to change.
/// </summary>
public sealed class TokenizerFormatException : Exception
{
    public TokenizerFormatException(string message) : base(message) { }

    public TokenizerFormatException(string message, Exception inner) : base(message, inner) { }

    internal static TokenizerFormatException Unsupported(string section, string? type) =>
        new($"Unsupported {section} type '{type ?? "(missing)"}' in tokenizer.json.");
}
