namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// Picks the tokenizer of a model folder by the files it ships: <c>tokenizer.json</c> (Hugging Face format, our own
/// <see cref="HuggingFaceTokenizer"/>: the reference format, preferred when present), else a SentencePiece
/// <c>tokenizer.model</c>, else a tiktoken <c>*.tiktoken</c> file (both through Microsoft.ML.Tokenizers, see
/// <see cref="LibraryTokenizer"/>). <c>tokenizer_config.json</c>, when present, adds the special tokens.
/// </summary>
public static class TokenizerLoader
{
    /// <exception cref="TokenizerFormatException">No tokenizer file, or one that cannot be served (the message says what is missing).</exception>
    public static IChatTokenizer LoadFromFolder(string folder)
    {
        var config = Path.Combine(folder, "tokenizer_config.json");
        var json = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(json)) return HuggingFaceTokenizer.Load(json, config);
        var sentencePiece = Path.Combine(folder, "tokenizer.model");
        if (File.Exists(sentencePiece)) return LibraryTokenizer.LoadSentencePiece(sentencePiece, config);
        var tiktoken = Directory.Exists(folder) ? Directory.GetFiles(folder, "*.tiktoken") : [];
        if (tiktoken.Length > 1)
            throw new TokenizerFormatException($"{folder} has several .tiktoken files ({string.Join(", ", tiktoken.Select(Path.GetFileName))}): keep one.");
        if (tiktoken.Length == 1) return LibraryTokenizer.LoadTiktoken(tiktoken[0], config);
        throw new TokenizerFormatException(
            $"{folder} has no tokenizer: expected tokenizer.json (Hugging Face), tokenizer.model (SentencePiece) or <encoding>.tiktoken.");
    }
}
