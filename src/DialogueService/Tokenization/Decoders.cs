using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// Turns token strings back into text (tokenizer.json <c>decoder</c>). Like the reference implementation, a decoder
/// rewrites the list of token strings in place; the text is their concatenation.
/// </summary>
internal abstract class Decoder
{
    public abstract void DecodeChain(List<string> tokens);

    public static Decoder? FromJson(JsonElement e, IReadOnlySet<string> addedTokenContents)
    {
        if (e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return null;
        return e.Type() switch
        {
            "Sequence" => new SequenceDecoder(e.Array("decoders").Select(d => FromJson(d, addedTokenContents)).OfType<Decoder>().ToArray()),
            "ByteLevel" => new ByteLevelDecoder(addedTokenContents),
            "Metaspace" => new MetaspaceDecoder(e.String("replacement") ?? "\u2581"),
            "Replace" => new ReplaceDecoder(e),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(e),
            var t => throw TokenizerFormatException.Unsupported("decoder", t),
        };
    }

    /// <summary>UTF-8 bytes to text; invalid or incomplete sequences become U+FFFD (maximal subparts, as TextDecoder does).</summary>
    protected static string DecodeUtf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);
}

internal sealed class SequenceDecoder(Decoder[] steps) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        foreach (var step in steps) step.DecodeChain(tokens);
    }
}

/// <summary>
/// Byte-level: each run of model tokens is mapped back through the byte alphabet and decoded as UTF-8;
/// added tokens (written as plain text, not in the alphabet) pass through unchanged.
/// </summary>
internal sealed class ByteLevelDecoder(IReadOnlySet<string> addedTokenContents) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var output = new List<string>();
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            if (addedTokenContents.Contains(token))
            {
                Flush();
                output.Add(token);
                continue;
            }
            // A character outside the alphabet stands for byte 0, as in the reference implementation.
            foreach (var c in token) bytes.Add((byte)Math.Max(ByteLevelAlphabet.ToByte(c), 0));
        }
        Flush();
        tokens.Clear();
        tokens.AddRange(output);

        void Flush()
        {
            if (bytes.Count == 0) return;
            output.Add(DecodeUtf8(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
            bytes.Clear();
        }
    }
}

internal sealed class MetaspaceDecoder(string replacement) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i].Replace(replacement, " ", StringComparison.Ordinal);
            tokens[i] = i == 0 && t.StartsWith(' ') ? t[1..] : t;
        }
    }
}

internal sealed class ReplaceDecoder : Decoder
{
    private readonly string? _literal;
    private readonly Regex? _regex;
    private readonly string _content;

    public ReplaceDecoder(JsonElement e)
    {
        _content = e.String("content") ?? "";
        if (!e.Has("pattern", out var pattern)) throw new TokenizerFormatException("Replace decoder without a pattern.");
        _literal = pattern.String("String");
        if (_literal is null)
            _regex = pattern.String("Regex") is { } r ? new Regex(r, RegexOptions.CultureInvariant)
                : throw new TokenizerFormatException("Replace decoder pattern must be {\"String\": ...} or {\"Regex\": ...}.");
    }

    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
            tokens[i] = _literal is not null
                ? (_literal.Length == 0 ? tokens[i] : tokens[i].Replace(_literal, _content, StringComparison.Ordinal))
                : _regex!.Replace(tokens[i], _content.Replace("$", "$$"));
    }
}

/// <summary>Runs of <c>&lt;0xXX&gt;</c> byte tokens become the text their bytes decode to.</summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            if (TryParseByte(token, out var b))
            {
                bytes.Add(b);
                continue;
            }
            Flush();
            output.Add(token);
        }
        Flush();
        tokens.Clear();
        tokens.AddRange(output);

        void Flush()
        {
            if (bytes.Count == 0) return;
            output.Add(DecodeUtf8(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
            bytes.Clear();
        }
    }

    internal static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }
}

internal sealed class FuseDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var joined = string.Concat(tokens);
        tokens.Clear();
        tokens.Add(joined);
    }
}

/// <summary>Strips up to <c>start</c> leading and <c>stop</c> trailing occurrences of one character from each token.</summary>
internal sealed class StripDecoder : Decoder
{
    private readonly char _content;
    private readonly int _start;
    private readonly int _stop;

    public StripDecoder(JsonElement e)
    {
        var content = e.String("content") ?? " ";
        if (content.Length != 1) throw new TokenizerFormatException($"Strip decoder content must be one character, got '{content}'.");
        _content = content[0];
        _start = e.Int("start", 0);
        _stop = e.Int("stop", 0);
    }

    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            var startCut = 0;
            while (startCut < _start && startCut < t.Length && t[startCut] == _content) startCut++;
            var stopCut = t.Length;
            while (t.Length - stopCut < _stop && stopCut > startCut && t[stopCut - 1] == _content) stopCut--;
            tokens[i] = t[startCut..stopCut];
        }
    }
}
