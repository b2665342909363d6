using MLTokenizer = Microsoft.ML.Tokenizers.Tokenizer;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// What DialogueService needs from the served model's tokenizer, beyond Microsoft.ML.Tokenizers' abstraction:
/// control over special tokens in both directions (add BOS/EOS or not; parse special-token strings as control tokens
/// only in template text, never in user text; skip them when decoding), the added tokens by name, decoding of any
/// span of ids (streaming detokenization decodes short windows), and the BOS/EOS strings the chat template writes.
/// <para>
/// Implementations: <see cref="HuggingFaceTokenizer"/> (tokenizer.json, our own) and <see cref="LibraryTokenizer"/>
/// (Microsoft.ML.Tokenizers' SentencePiece and tiktoken tokenizers, adapted). <see cref="TokenizerLoader"/> picks one
/// from a model folder. Implementations are thread-safe.
/// </para>
/// </summary>
public interface IChatTokenizer
{
    /// <summary>One past the largest token id.</summary>
    int VocabularySize { get; }

    /// <summary>Tokens outside the model's merges (special and not), by id.</summary>
    IReadOnlyList<AddedToken> AddedTokens { get; }

    string? BosToken { get; }
    string? EosToken { get; }
    int? EosTokenId { get; }

    /// <summary>The token string of an id (as the vocabulary writes it), or null when the id is not in the vocabulary.</summary>
    string? IdToToken(int id);

    /// <summary>The id of a token string (a vocabulary entry or an added token), or null.</summary>
    int? TokenToId(string? token);

    /// <summary>Appends the token ids of <paramref name="text"/> to <paramref name="ids"/>.</summary>
    /// <param name="addSpecialTokens">Add the tokens the format puts around a sequence (for example BOS).</param>
    /// <param name="parseSpecialTokens">
    /// Recognize special-token strings written in the text as those control tokens. Leave false for user-supplied
    /// text, so that users cannot inject control tokens; set it for text rendered by a chat template.
    /// </param>
    void Encode(string text, List<int> ids, bool addSpecialTokens = true, bool parseSpecialTokens = false);

    /// <summary>Decodes ids to text; an id outside the vocabulary is an <see cref="ArgumentOutOfRangeException"/>.</summary>
    /// <param name="cleanUpTokenizationSpaces">Remove the space before punctuation (" ." → "."); null: the model's setting.</param>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null);

    /// <summary>The same tokenizer as Microsoft.ML.Tokenizers' abstraction, for .NET code written against it.</summary>
    MLTokenizer AsMLTokenizer();

    int[] Encode(string text, bool addSpecialTokens = true, bool parseSpecialTokens = false)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, ids, addSpecialTokens, parseSpecialTokens);
        return ids.ToArray();
    }

    int CountTokens(string text, bool addSpecialTokens = true, bool parseSpecialTokens = false)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, ids, addSpecialTokens, parseSpecialTokens);
        return ids.Count;
    }

    bool IsSpecial(int id);

    /// <summary>A detokenizer for one generated sequence: feed ids as they come, receive only complete text.</summary>
    StreamingDetokenizer CreateStreamingDetokenizer(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);
}
